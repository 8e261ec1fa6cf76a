/**
 * The main job end to end on built-in data (no ../shared): training, metrics,
 * curves, checkpoints, export and its check, eval, resume, freeze, bad runs.
 */
import { describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { finetune, NonFiniteLossError } from '../../src/train/finetune.js';
import type { FinetuneOptions } from '../../src/train/options.js';
import type { FinetuneEvent } from '../../src/train/events.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { evaluateModel } from '../../src/eval/evaluateModel.js';
import { loadModel } from '../../src/onnx/io.js';
import { getMetadata } from '../../src/ir/graph.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'sff-ft-'));

/**
 * A small, fast configuration: the paper's CNNB at 16×16 on rendered shapes, with the paper's mean of
 * all blocks so that the export keeps every head (the from-scratch default, `weighted`, may prune it).
 */
const base = (out: string, extra: Partial<FinetuneOptions> = {}): FinetuneOptions => ({
  model: 'builtin:cnnb',
  data: 'builtin:shapes',
  imageSize: 16,
  batchSize: 64,
  maxStepsPerEpoch: 12,
  epochs: 2,
  ensemble: 'all',
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
    // Labelled by block name, with the epoch's end time and learning rates.
    expect(Object.keys(lines[0].val.acc)).toEqual(['block0', 'block1', 'block2']);
    expect(lines[2].val.acc.block1).toBe(last.val.acc[1]);
    expect(lines[2].lr).toEqual({ block0: last.lr[0], block1: last.lr[1], block2: last.lr[2] });
    expect(Date.parse(lines[0].time)).toBeGreaterThan(Date.parse('2020-01-01'));
    const csv = readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    expect(csv).toHaveLength(4);
    const col = (name: string) => csv[0]!.indexOf(name);
    for (const name of ['epoch', 'time', 'val_acc/ensemble', 'val_loss/block0', 'train_loss/block2', 'val_acc/block1', 'lr/block2']) expect(col(name), name).toBeGreaterThanOrEqual(0);
    expect(Number(csv[3]![col('val_loss/block0')])).toBe(last.val.loss[0]);
    expect(Number(csv[3]![col('train_acc/block2')])).toBe(last.train.acc[2]);
    // Curves: one panel per block and one for the ensemble, loss and accuracy, train (dashed) and validation.
    const svg = readFileSync(join(out, 'curves.svg'), 'utf8');
    expect(svg).toMatch(/^<svg[\s\S]*polyline[\s\S]*<\/svg>$/);
    for (const title of ['ensemble (all)', 'block0', 'block1', 'block2', 'validation loss', 'training accuracy']) expect(svg).toContain(title);
    expect(svg.match(/stroke-dasharray/g)!.length).toBeGreaterThanOrEqual(2 * 4);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<svg');
    expect(readCheckpoint<{ epoch: number }>(join(out, 'checkpoint.sff')).header.epoch).toBe(2);
    for (const k of [0, 1, 2]) expect(existsSync(join(out, 'blocks', `block${k}_block${k}.train.onnx`))).toBe(true);
    // The export reproduces the training-time ensemble.
    expect(r.exportCheck!.maxAbsDiff).toBeLessThan(1e-3 * Math.max(1, r.exportCheck!.scale));
    expect(r.exportCheck!.accuracy).toBeCloseTo(r.exportCheck!.trainingAccuracy, 5);
    expect(r.exportCheck!.crossValidated).toBeUndefined(); // 'all' fits nothing on validation
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

  it('as a library: prints nothing, emits structured events, and stops on an AbortSignal', async () => {
    const out = tmp();
    const events: FinetuneEvent[] = [];
    const controller = new AbortController();
    const written: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => (written.push(String(c)), true));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (written.push(String(c)), true));
    const { quiet: _unused, ...opts } = base(out, { epochs: 3 });
    const result = await finetune({
      ...opts,
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        // Abort during the second epoch: the first epoch's checkpoint stays.
        if (e.type === 'step' && e.epoch === 1 && e.step === 3) controller.abort();
      },
    });
    stdout.mockRestore();
    stderr.mockRestore();
    expect(written).toEqual([]);
    // Aborted: the unfinished epoch is dropped, the best epoch so far exported, the run marked interrupted.
    expect(result.interrupted).toBe(true);
    expect(result.history).toHaveLength(1);
    expect(events.find((e) => e.type === 'interrupted')).toMatchObject({ type: 'interrupted', epochs: 1, exportedEpoch: 1 });
    const types = new Set(events.map((e) => e.type));
    for (const t of ['model', 'data', 'config', 'block', 'progress', 'step', 'epoch']) expect(types.has(t as FinetuneEvent['type']), t).toBe(true);
    const epoch = events.find((e) => e.type === 'epoch')!;
    expect(epoch.type === 'epoch' && epoch.blocks).toEqual(['block0', 'block1', 'block2']);
    const phases = new Set(events.flatMap((e) => (e.type === 'progress' ? [e.phase] : [])));
    expect([...phases]).toEqual(expect.arrayContaining(['build', 'train', 'validate']));
    // Progress during epoch 2 carries a whole-run estimate.
    expect(events.some((e) => e.type === 'progress' && e.phase === 'train' && e.epoch === 2 && (e.runEtaSeconds ?? 0) > 0)).toBe(true);
    expect(readCheckpoint<{ epoch: number }>(join(out, 'checkpoint.sff')).header.epoch).toBe(0);
    expect(readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n')).toHaveLength(2);
  }, 60_000);

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
