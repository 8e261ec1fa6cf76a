/** The BP baseline (SPEC §5): a J-way classifier replaces the model's own when the label set differs; the export is a plain classifier. */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { bpBlock, prepareModel } from '../../src/train/model.js';
import { finetune } from '../../src/train/finetune.js';
import { loadModel } from '../../src/onnx/io.js';
import { getMetadata } from '../../src/ir/graph.js';
import { createModel } from '../../src/models/index.js';
import { SHAPE_CLASSES } from '../../src/data/index.js';
import { buildRunners, toyBatch, trainSteps } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'sff-bp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('BP classifier replacement', () => {
  it('a 1000-class ResNet18-shaped model trained on 10 classes gets a fresh 10-way fc', async () => {
    const pm = await prepareModel('builtin:resnet18', { imageSize: 32, classes: 1000 });
    expect(pm.imported.head.classes).toBe(1000);
    const block = bpBlock(pm, 10, 0);
    expect(block.outputShape).toEqual([10]);
    const fresh = block.trainable.filter((t) => t.endsWith('__new'));
    expect(fresh).toHaveLength(2);
    const dims = fresh.map((t) => block.constants.get(t)!.dims);
    expect(dims).toContainEqual([10]);
    expect(dims.some((d) => d.length === 2 && d.includes(10) && d.includes(512))).toBe(true);
    // The old 1000-way weights are no longer read.
    expect([...block.constants.values()].some((t) => t.dims.includes(1000))).toBe(false);
    // Everything else of the network trains with it (conv weights, BN scale/shift).
    expect(block.trainable.length).toBeGreaterThan(40);
  }, 30_000);

  it('the replaced classifier trains: logits are J-way and the loss falls (CNN, 1000 → 4 classes)', async () => {
    const pm = await prepareModel('builtin:cnn', { imageSize: 16, classes: 1000 });
    const b = await buildRunners(pm, 'bp', 4, 8, 1e-3);
    const { x, labels } = toyBatch(8, 3, 16, 4);
    const r = await b.runners[0]!.trainStep(x, labels);
    expect(r.goodness.length).toBe(8 * 4);
    const [loss] = await trainSteps(b.runners, x, labels, 10);
    expect(loss!.at(-1)!).toBeLessThan(loss![0]!);
    await Promise.all(b.runners.map((r) => r.release()));
  }, 30_000);

  it('keeps the classifier when J matches, and adds the metadata dropout before it in training', async () => {
    const pm = await prepareModel('builtin:cnn', { imageSize: 16 });
    const block = bpBlock(pm, 10, 0);
    expect(block.trainable.some((t) => t.endsWith('__new'))).toBe(false);
    const dropout = Number(getMetadata(createModel('cnn', { imageSize: 16 }), 'sff.dropout') ?? 0);
    expect(block.nodes.some((n) => n.opType === 'Dropout')).toBe(dropout > 0);
  });
});

describe('BP export', () => {
  it('is the plain classifier (no aux heads) with sff.classes and sff.preprocess metadata', async () => {
    const out = join(tmp, 'bp');
    const r = await finetune({ model: 'builtin:cnn', data: 'builtin:shapes', imageSize: 16, method: 'bp', epochs: 1, maxStepsPerEpoch: 3, batchSize: 32, out, quiet: true });
    expect(r.modelPath).toBeDefined();
    expect(r.trainableParams).toBe(r.blocks[0]!.params + r.blocks[0]!.headParams);
    expect(r.history[0]!.steps).toBe(3);
    expect(r.history[0]!.stepSeconds).toBeGreaterThan(0);
    expect(r.history[0]!.trainableParams).toBe(r.trainableParams);
    expect(r.exportCheck!.maxAbsDiff).toBeLessThan(1e-3);
    const m = loadModel(r.modelPath!);
    expect(JSON.parse(getMetadata(m, 'sff.classes')!)).toEqual([...SHAPE_CLASSES]);
    const pre = JSON.parse(getMetadata(m, 'sff.preprocess')!);
    expect(pre.size).toEqual([16, 16]);
    expect(pre.mean).toHaveLength(3);
    // The network's own ops only: no goodness (ReduceMean of squares), no LayerNorm, no aux conv, no training Dropout.
    const original = new Set(createModel('cnn', { imageSize: 16 }).graph.nodes.map((n) => n.opType));
    // The classifier's dropout may stay as an inference-mode Dropout (no training_mode input: the identity).
    const inferenceDropout = (n: { opType: string; inputs: string[] }) => n.opType === 'Dropout' && !n.inputs[2];
    const extra = m.graph.nodes.filter((n) => !original.has(n.opType) && n.opType !== 'Identity' && n.opType !== 'Sum' && !inferenceDropout(n));
    expect(extra.map((n) => `${n.opType} ${n.name}`)).toEqual([]);
    expect(m.graph.nodes.filter((n) => n.opType === 'Conv')).toHaveLength(3);
    expect(m.graph.inputs.filter((i) => !m.graph.initializers.has(i.name))).toHaveLength(1);
    // Its scores are the logits: one forward gives [N, 10].
    const session = await ort.InferenceSession.create(r.modelPath!);
    const res = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', new Float32Array(2 * 3 * 16 * 16).fill(0.1), [2, 3, 16, 16]) });
    expect(res['scores']!.dims).toEqual([2, 10]);
    await session.release();
  }, 30_000);
});
