/**
 * The corpus of real PyTorch exports (scripts/export_corpus.py + dist/corpus/derive.js):
 * every graph imports and splits into ≥ 2 blocks with no flag; the derived copies (float16,
 * QDQ, external data, opset 21) compute what their source computes; one graph per family
 * trains a short epoch and exports a model plain onnxruntime runs at the graph's size.
 * Skipped, with the command to run, when the corpus was not made (no PyTorch).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { CORPUS_DIR, hasCorpus, warnSkip } from '../helpers/shared.js';
import { readManifest, type CorpusEntry } from '../../src/corpus/derive.js';
import { writeTinyImageFolder } from '../../src/corpus/sweep.js';
import { inspectModel } from '../../src/cli/commands/inspect.js';
import { importModel } from '../../src/import/index.js';
import { loadModel } from '../../src/onnx/io.js';
import { finetune } from '../../src/train/finetune.js';
import { maxAbsDiff, randomImage, runBytes, runModel } from './run.js';

warnSkip('test/import/corpus.test.ts', 'corpus');
const graphs: CorpusEntry[] = hasCorpus ? readManifest(CORPUS_DIR).graphs : [];
const exported = graphs.filter((g) => !g.exportError);
const path = (g: CorpusEntry | string) => join(CORPUS_DIR, typeof g === 'string' ? g : g.file);
const find = (file: string) => exported.find((g) => g.file === file);

describe.skipIf(!hasCorpus)('corpus: inspect every graph with no flag', () => {
  it('lists what PyTorch could not export with the exporter’s reason', () => {
    for (const g of graphs.filter((x) => x.exportError)) expect(g.exportError, g.file).toMatch(/\w+Error: /);
    expect(exported.length).toBeGreaterThan(graphs.length / 2);
  });

  it.each(exported.map((g) => [g.file, g] as const))('%s', async (_file, g) => {
    const r = await inspectModel(path(g));
    expect(r.blocks.length).toBeGreaterThanOrEqual(2);
    expect(r.head.classes).toBe(g.classes);
    // Fixed-batch exports too: training runs at any batch size.
    expect(r.dynamicBatch).toBe(true);
    // The size: the graph's when fixed, else the 3-channel default, said so.
    if (g.dynamicHW) {
      expect(r.inputDims).toEqual([1, 3, 224, 224]);
      expect(r.imageSizeReason).toMatch(/224×224 assumed.*--image-size/);
    } else expect(r.inputDims).toEqual([1, 3, ...g.size]);
    for (const b of r.blocks) {
      expect(b.macs, b.name).toBeGreaterThan(0);
      expect(b.activationBytes, b.name).toBeGreaterThan(0);
    }
    // A training-mode export keeps its BN layers (as inference BN SFF trains); SqueezeNet has none.
    if (g.mode === 'train' && g.family !== 'SqueezeNet') expect(r.batchNorm).toBe('present');
  }, 180_000);
});

describe.skipIf(!hasCorpus)('corpus: derived copies compute what their source computes', () => {
  const compare = async (derived: string, source: string, tol: number, size: [number, number]) => {
    if (!find(derived) || !find(source)) throw new Error(`corpus graph ${derived} or ${source} missing: re-run dist/corpus/derive.js`);
    const im = await importModel(loadModel(path(derived)), { imageSize: size });
    const x = randomImage([2, 3, ...size]);
    const ours = await runModel(im.model, { [im.input]: x });
    const ref = await runBytes(path(source), { input: x });
    const scale = Math.max(...Array.from(ref.logits!, Math.abs));
    expect(maxAbsDiff(ours.logits!, ref.logits!) / scale).toBeLessThan(tol);
    return im;
  };

  it('float16 with float32 I/O: widened to float32, source dtype recorded, logits as the float32 graph’s to fp16 precision', async () => {
    const im = await compare('resnet18_eval_op17_dyn_fp16io32.onnx', 'resnet18_eval_op17_dyn.onnx', 2e-2, [64, 64]);
    expect(im.sourceDtype).toBe('float16');
    expect(im.opCounts.Cast).toBeUndefined();
    expect(im.notes.join('\n')).toMatch(/float16 model.*widened to float32/);
  }, 120_000);

  it('all-float16 training-mode export imports with trainable BN', async () => {
    const g = find('mobilenet_v3_small_train_op13_batch_fp16.onnx');
    expect(g).toBeDefined();
    const im = await importModel(loadModel(path(g!)));
    expect(im.sourceDtype).toBe('float16');
    expect(im.hasBatchNorm).toBe(true);
    expect(im.model.graph.inputs[0]!.type).toMatchObject({ elemType: 1 });
    expect([...im.model.graph.initializers.values()].every((t) => t.dataType !== 10)).toBe(true);
  }, 120_000);

  it('QDQ weights: dequantised exactly as onnxruntime runs the quantised graph', async () => {
    const file = 'resnet18_eval_op13_batch_qdqweights.onnx';
    const im = await importModel(loadModel(path(file)));
    const x = randomImage([2, 3, 64, 64]);
    const ours = await runModel(im.model, { [im.input]: x });
    const ref = await runBytes(path(file), { input: x });
    expect(maxAbsDiff(ours.logits!, ref.logits!)).toBeLessThan(1e-4 * Math.max(1, ...Array.from(ref.logits!, Math.abs)));
    expect(im.opCounts.DequantizeLinear).toBeUndefined();
    expect(im.notes.join('\n')).toMatch(/21 quantised constant/);
  }, 120_000);

  it('QDQ activations: stripped with a note saying the result is float32 (leaving the weights-only graph’s function)', async () => {
    const im = await compare('resnet18_eval_op13_batch_qdq.onnx', 'resnet18_eval_op13_batch_qdqweights.onnx', 1e-5, [64, 64]);
    expect(im.opCounts.QuantizeLinear).toBeUndefined();
    expect(im.notes.join('\n')).toMatch(/activation QuantizeLinear→DequantizeLinear pair\(s\) stripped.*float32/);
  }, 120_000);

  it('external data and opset 21 import to the source’s function', async () => {
    const ext = await compare('resnet50_eval_op17_dyn_extdata.onnx', 'resnet50_eval_op17_dyn.onnx', 1e-5, [64, 64]);
    expect(ext.paramCount).toBeGreaterThan(20e6);
    const op21 = await compare('mobilenet_v3_small_eval_op17_dyn_op21.onnx', 'mobilenet_v3_small_eval_op17_dyn.onnx', 1e-5, [64, 64]);
    expect(op21.opset).toBe(21);
  }, 180_000);
});

/** One graph per family: the training-mode export with symbolic H/W where PyTorch made one, of the family's smallest arch. */
function perFamily(): CorpusEntry[] {
  const rank = (g: CorpusEntry) => (g.variant === 'op17_dyn' ? 0 : 2) + (g.mode === 'train' ? 0 : 1);
  const sorted = exported.filter((g) => !g.derivedFrom).sort((a, b) => rank(a) - rank(b) || statSync(path(a)).size - statSync(path(b)).size);
  const out = new Map<string, CorpusEntry>();
  for (const g of sorted) if (!out.has(g.family)) out.set(g.family, g);
  return [...out.values()];
}

describe.skipIf(!hasCorpus)('corpus: one graph per family trains one short epoch and exports', () => {
  let data = '';
  beforeAll(async () => {
    // A small image folder of 64×64 images (4 classes × 12): the size the dynamic graphs then default to.
    data = mkdtempSync(join(tmpdir(), 'sff-corpus-data-'));
    await writeTinyImageFolder(data, 4, 12, 64);
  });
  afterAll(() => rmSync(data, { recursive: true, force: true }));

  it.each(perFamily().map((g) => [g.family, g] as const))('%s', async (_family, g) => {
    const out = mkdtempSync(join(tmpdir(), 'sff-corpus-run-'));
    try {
      const logs: string[] = [];
      const r = await finetune({
        model: path(g), data, epochs: 1, batchSize: 16, maxStepsPerEpoch: 2, out, quiet: true, threads: 1,
        onEvent: (e) => e.type === 'note' && logs.push(e.message),
      });
      if (g.dynamicHW) expect(logs.join('\n')).toMatch(/input {2}64×64, the size every image of the 48 images of .* has/);
      expect(r.history).toHaveLength(1);
      r.history[0]!.train.loss.forEach((l, k) => expect(Number.isFinite(l), `block ${k} loss`).toBe(true));
      expect(r.exportCheck!.maxAbsDiff).toBeLessThan(1e-3 * Math.max(1, r.exportCheck!.scale));
      // Plain onnxruntime runs the export on images of the graph's size.
      const s = await ort.InferenceSession.create(r.modelPath!);
      const o = await s.run({ input: randomImage([3, 3, ...g.size]) });
      expect(o.scores!.dims).toEqual([3, 4]);
      expect(Array.from(o.scores!.data as Float32Array).every(Number.isFinite)).toBe(true);
      await s.release();
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
