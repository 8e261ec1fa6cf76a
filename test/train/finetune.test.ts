/**
 * The main job end to end on built-in data (no ../shared): training, metrics,
 * curves, checkpoints, export and its check, eval, resume, freeze, bad runs.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { finetune, NonFiniteLossError } from '../../src/train/finetune.js';
import type { FinetuneOptions } from '../../src/train/options.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { evaluateModel } from '../../src/eval/evaluateModel.js';
import { loadModel } from '../../src/onnx/io.js';
import { getMetadata } from '../../src/ir/graph.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'sff-ft-'));

/** A small, fast configuration: the paper's CNNB at 16×16 on rendered shapes. */
const base = (out: string, extra: Partial<FinetuneOptions> = {}): FinetuneOptions => ({
  model: 'builtin:cnnb',
  data: 'builtin:shapes',
  imageSize: 16,
  batchSize: 64,
  maxStepsPerEpoch: 12,
  epochs: 2,
  out,
  quiet: true,
  threads: 1,
  ...extra,
});

describe('finetune (built-in CNNB on built-in shapes)', () => {
  it('trains every block, writes metrics, curves, checkpoint and an export that reproduces evaluation', async () => {
    const out = tmp();
    const r = await finetune(base(out, { epochs: 3 }));
    expect(r.history).toHaveLength(3);
    const first = r.history[0]!;
    const last = r.history[2]!;
    // Every block's own loss falls, and the ensemble beats chance (10 classes) clearly.
    last.train.loss.forEach((l, k) => expect(l, `block ${k}`).toBeLessThan(first.train.loss[k]!));
    expect(last.val.layers.all!).toBeGreaterThan(0.2);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.epoch)).toEqual([1, 2, 3]);
    expect(lines[0].val.acc).toHaveLength(3);
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toMatch(/^<svg[\s\S]*polyline[\s\S]*<\/svg>$/);
    expect(readCheckpoint<{ epoch: number }>(join(out, 'checkpoint.sff')).header.epoch).toBe(2);
    for (const k of [0, 1, 2]) expect(existsSync(join(out, 'blocks', `block${k}_block${k}.train.onnx`))).toBe(true);
    // The export reproduces the training-time ensemble.
    expect(r.exportCheck!.maxAbsDiff).toBeLessThan(1e-3 * Math.max(1, r.exportCheck!.scale));
    expect(r.exportCheck!.accuracy).toBeCloseTo(r.exportCheck!.trainingAccuracy, 5);
    const model = loadModel(r.modelPath!);
    expect(JSON.parse(getMetadata(model, 'sff.classes')!)).toHaveLength(10);
    expect(JSON.parse(getMetadata(model, 'sff.preprocess')!).size).toEqual([16, 16]);
    expect(model.graph.outputs.map((o) => o.name)).toEqual(['scores', 'goodness_block0', 'goodness_block1', 'goodness_block2']);
    // Any batch size runs.
    const s = await ort.InferenceSession.create(r.modelPath!);
    const o = await s.run({ input: new ort.Tensor('float32', new Float32Array(5 * 3 * 16 * 16), [5, 3, 16, 16]) });
    expect(o.scores!.dims).toEqual([5, 10]);
    // eval of the exported model on the same validation split agrees with the run's own check.
    const ev = await evaluateModel(r.modelPath!, { data: 'builtin:shapes', split: 'val' });
    expect(ev.accuracy).toBeCloseTo(r.exportCheck!.accuracy, 5);
    expect(ev.blocks).toHaveLength(3);
  }, 120_000);

  it('resumes from a checkpoint and ends exactly where an uninterrupted run ends', async () => {
    const a = tmp();
    const full = await finetune(base(a, { epochs: 3, noExport: true }));
    const b = tmp();
    await finetune(base(b, { epochs: 2, noExport: true }));
    const resumed = await finetune({ resume: b, epochs: 3, model: '', data: '', quiet: true, noExport: true, threads: 1 });
    expect(resumed.history).toHaveLength(3);
    const x = full.history[2]!;
    const y = resumed.history[2]!;
    // Same seed, same order, same state: identical up to float rounding in onnxruntime.
    x.val.loss.forEach((l, k) => expect(Math.abs(l - y.val.loss[k]!)).toBeLessThan(1e-5));
    expect(y.val.acc).toEqual(x.val.acc);
    expect(y.lr).toEqual(x.lr);
  }, 120_000);

  it('keeps frozen blocks unchanged while their heads learn', async () => {
    const out = tmp();
    await finetune(base(out, { epochs: 1, freeze: ['block0'], noExport: true }));
    const ck = readCheckpoint<{ blocks: { name: string }[] }>(join(out, 'checkpoint.sff'));
    // block0's trainable layout holds only its head: conv/BN weights of block0 are not in it.
    const b0 = ck.arrays['b0.params']!;
    const b1 = ck.arrays['b1.params']!;
    expect(b0.length).toBeLessThan(b1.length);
    expect(b0.length).toBe(2 * 32 + 10 * 32 * 25 + 10); // LayerNorm + 5×5 aux conv only
  }, 60_000);

  it('stops on a non-finite loss, naming the block and the checkpoint state', async () => {
    // A folder holds one run (a second one into it is refused), and a resumed run keeps its --lr:
    // the diverging run is a fresh one, which has no checkpoint yet.
    const out = tmp();
    const err = await finetune(base(out, { epochs: 3, lr: 1e30, noExport: true })).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect(String(err.message)).toMatch(/block \d+ \(block\d\) produced a non-finite loss/);
    expect(String(err.message)).toMatch(/The last good checkpoint \(none yet\)/);
    expect(String(err.message)).toMatch(/lower --lr/);
  }, 60_000);

  it('runs the norm placements and the baselines', async () => {
    for (const extra of [{ norm: 'head' as const }, { norm: 'none' as const }, { method: 'bp' as const }, { method: 'cwc' as const }]) {
      const r = await finetune(base(tmp(), { epochs: 1, noExport: false, ...extra }));
      expect(r.history).toHaveLength(1);
      expect(r.exportCheck!.maxAbsDiff).toBeLessThan(1e-3 * Math.max(1, r.exportCheck!.scale));
    }
  }, 120_000);
});
