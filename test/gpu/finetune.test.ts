/**
 * A tiny SFF run end to end on the WebGPU EP (CNNB at 16×16 on 48 rendered shapes, 3 classes):
 * every block's sessions placed on the GPU (the run log says so), and the exported model,
 * evaluated by the CPU EP, reaches the accuracy the run measured on the GPU. And a run with a
 * node the EP lacks (BP's training-mode Dropout) names it and warns.
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { renderShape } from '../../src/data/synthetic.js';
import { finetune } from '../../src/train/finetune.js';
import { evaluateModel } from '../../src/eval/evaluateModel.js';
import { warnWebgpuSkip, webgpuSkipReason } from './helpers.js';

warnWebgpuSkip('test/gpu/finetune.test.ts');

/** 16 images of each of 3 shape classes as PNGs in <dir>/<class>/. */
async function shapesFolder(dir: string): Promise<void> {
  const px = new Uint8Array(16 * 16 * 3);
  for (let i = 0; i < 48; i++) {
    const index = (i % 3) + 10 * Math.floor(i / 3); // classes 0, 1, 2 of the built-in shapes
    renderShape(5, 0, index, 16, 16, px);
    const cls = join(dir, `shape${index % 10}`);
    mkdirSync(cls, { recursive: true });
    await sharp(Buffer.from(px), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(cls, `${i}.png`));
  }
}

describe.skipIf(webgpuSkipReason !== undefined)('finetune on --device webgpu', () => {
  it('trains on the GPU with no CPU fallback; the CPU EP reproduces the exported model’s accuracy', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sff-webgpu-'));
    const data = join(root, 'data');
    await shapesFolder(data);
    const logs: string[] = [];
    const r = await finetune({
      model: 'builtin:cnnb', data, imageSize: 16, batchSize: 8, epochs: 2, maxStepsPerEpoch: 4, valFraction: 0.25,
      out: join(root, 'run'), quiet: true, device: 'webgpu', bnMomentum: 0.5, pipeline: 'auto', threads: 2,
      onEvent: (e) => (e.type === 'note' || e.type === 'warning') && logs.push(e.message),
    });
    // The WebGPU EP cannot run sessions from several threads, so --pipeline auto runs the blocks serially and says why.
    expect(logs).toContain("pipeline auto: onnxruntime's WebGPU EP shares one device context across the process and cannot run sessions from several threads at once, so the blocks run serially");
    const placement = logs.filter((l) => l.includes('placement') || l.includes('FALLBACK') || l.includes('falls back'));
    expect(placement, logs.join('\n')).toHaveLength(3);
    placement.forEach((l, k) => expect(l).toMatch(new RegExp(`^ {4}block ${k} block${k} placement: train step all \\d+ nodes on WebGpuExecutionProvider; eval all \\d+ nodes on WebGpuExecutionProvider$`)));
    expect(r.history).toHaveLength(2);
    // The run's own check ran the export on the same device; now the CPU EP evaluates it, on the
    // same validation images (the run's 25%, not eval's default share).
    const onCpu = await evaluateModel(r.modelPath!, { data, split: 'val', valFraction: 0.25, device: 'cpu' });
    expect(onCpu.accuracy).toBeCloseTo(r.exportCheck!.accuracy, 5);
    expect(onCpu.accuracy).toBeCloseTo(r.exportCheck!.trainingAccuracy, 5);
  }, 600_000);

  it('a run that falls back says so: the BP baseline’s training-mode Dropout has no WebGPU kernel', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sff-webgpu-bp-'));
    const data = join(root, 'data');
    await shapesFolder(data);
    const logs: string[] = [];
    await finetune({
      model: 'builtin:cnnb', method: 'bp', data, imageSize: 16, batchSize: 8, epochs: 1, maxStepsPerEpoch: 2, valFraction: 0.25,
      out: join(root, 'run'), quiet: true, device: 'webgpu', noExport: true,
      onEvent: (e) => (e.type === 'note' || e.type === 'warning') && logs.push(e.message),
    });
    expect(logs.join('\n')).toMatch(/block 0 network train step: FALLBACK: 1 of \d+ nodes not on WebGpuExecutionProvider \(1× Dropout on CPU; e\.g\. '.*[Dd]ropout.*'\)/);
    expect(logs).toContain("this run falls back to onnxruntime's CPU EP for some nodes on --device webgpu (listed per block above): it runs, slower, with tensors copied each step");
  }, 600_000);
});
