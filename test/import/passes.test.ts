/**
 * The importer's normalisations of what exporters write, on graphs built in-test (no PyTorch):
 * aliased and computed BN parameters, float16, QDQ, the image-size default and its reasons,
 * per-block costs, and `inspect` on the tool's own export.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { makeModel, type Model } from '../../src/ir/graph.js';
import { floatTensor, floatToHalf, halfToFloat } from '../../src/ir/tensor.js';
import { nodeMacs } from '../../src/ir/cost.js';
import { probeShapes } from '../../src/runtime/probe.js';
import { encodeModel, decodeModel } from '../../src/onnx/io.js';
import { chooseImageSize, importModel, ImportError, parseImageSize } from '../../src/import/index.js';
import { toFloat16, toQdq } from '../../src/corpus/derive.js';
import { writeTinyImageFolder } from '../../src/corpus/sweep.js';
import { commonImageSize } from '../../src/data/index.js';
import { inspectModel } from '../../src/cli/commands/inspect.js';
import { finetune } from '../../src/train/finetune.js';
import { ToyBuilder, toyResNet } from './toy.js';
import { maxAbsDiff, randomImage, runModel } from './run.js';

const copy = (m: Model): Model => decodeModel(encodeModel(m));
const feeds = (size = 16) => ({ image: randomImage([2, 3, size, size]) });

describe('BatchNormalization parameters as exporters write them', () => {
  it('training-mode BN reading Identity aliases of one deduplicated initializer imports, each BN with its own parameters', async () => {
    const m = toyResNet({ bn: 'train14' });
    const g = m.graph;
    // What torch.onnx.export writes for fresh BN layers: one `ones`/`zeros` tensor, Identity per use.
    g.initializers.set('ones', floatTensor('ones', [8], new Array(8).fill(1)));
    let k = 0;
    for (const n of g.nodes.filter((x) => x.opType === 'BatchNormalization' && g.initializers.get(x.inputs[1]!)!.dims[0] === 8)) {
      const alias = `onnx::Identity_${k++}`;
      g.nodes.unshift({ name: `Identity_${k}`, opType: 'Identity', domain: '', inputs: ['ones'], outputs: [alias], attrs: {} });
      n.inputs[1] = alias;
    }
    expect(k).toBeGreaterThanOrEqual(3);
    const im = await importModel(m);
    const bns = im.model.graph.nodes.filter((n) => n.opType === 'BatchNormalization');
    expect(bns).toHaveLength(6);
    const scales = bns.map((n) => n.inputs[1]!);
    expect(new Set(scales).size).toBe(6);
    for (const s of scales) expect(im.params).toContain(s);
  });

  it('BN parameters computed by a constant sub-graph are folded; an image-dependent one is an error naming node, module and what to do', async () => {
    const m = toyResNet({ bn: 'eval' });
    const g = m.graph;
    const bn = g.nodes.find((n) => n.opType === 'BatchNormalization')!;
    const two = 'two';
    g.initializers.set(two, floatTensor(two, [], [2]));
    g.nodes.unshift({ name: 'scale_x2', opType: 'Mul', domain: '', inputs: [bn.inputs[1]!, two], outputs: ['scale_x2_out'], attrs: {} });
    bn.inputs[1] = 'scale_x2_out';
    const im = await importModel(m);
    expect(im.notes.join('\n')).toMatch(/folded into initializers/);
    expect(maxAbsDiff((await runModel(m, feeds())).logits!, (await runModel(im.model, feeds())).logits!)).toBeLessThan(1e-5);

    const bad = toyResNet({ bn: 'eval' });
    const b2 = bad.graph.nodes.find((n) => n.opType === 'BatchNormalization')!;
    bad.graph.nodes.push({ name: 'pooled', opType: 'ReduceMean', domain: '', inputs: ['image'], outputs: ['pooled_out'], attrs: { axes: { type: 'ints', value: [0, 2, 3] }, keepdims: { type: 'int', value: 0 } } });
    bad.graph.nodes.push({ name: 'first_channel', opType: 'Slice', domain: '', inputs: ['pooled_out', 'st', 'en'], outputs: ['channel0'], attrs: {} });
    bad.graph.nodes.push({ name: 'scale_from_image', opType: 'Mul', domain: '', inputs: [b2.inputs[1]!, 'channel0'], outputs: ['img_scale'], attrs: {} });
    bad.graph.initializers.set('st', { name: 'st', dataType: 7, dims: [1], raw: new Uint8Array(new BigInt64Array([0n]).buffer) });
    bad.graph.initializers.set('en', { name: 'en', dataType: 7, dims: [1], raw: new Uint8Array(new BigInt64Array([1n]).buffer) });
    bad.graph.topoSort();
    b2.inputs[1] = 'img_scale';
    await expect(importModel(bad)).rejects.toThrow(ImportError);
    await expect(importModel(bad)).rejects.toThrow(/BatchNormalization '\/conv1\/BatchNormalization' in module 'conv1': its scale \('img_scale'\) is computed from the image.*--blocks.*--freeze/);
  });
});

describe('fixed-batch exports', () => {
  it('a Reshape target with the exported batch 1 baked in is rewritten so the graph runs at any batch', async () => {
    const t = new ToyBuilder(true);
    const x = t.input(3, 8, 1);
    let y = t.conv(x, 3, 4, 3, 1, 'conv1');
    // Channel shuffle as ShuffleNet exports it at batch 1: [1, 2, 2, 8, 8] → transpose → [1, 4, 8, 8].
    const s5 = t.b.initializer({ name: 'shape5', dataType: 7, dims: [5], raw: new Uint8Array(new BigInt64Array([1n, 2n, 2n, 8n, 8n]).buffer) });
    const s4 = t.b.initializer({ name: 'shape4', dataType: 7, dims: [4], raw: new Uint8Array(new BigInt64Array([1n, 4n, 8n, 8n]).buffer) });
    y = t.op('Reshape', [y, s5], '/shuffle/Reshape');
    y = t.op('Transpose', [y], '/shuffle/Transpose', { perm: [0, 2, 1, 3, 4] });
    y = t.op('Reshape', [y, s4], '/shuffle/Reshape_1');
    y = t.conv(y, 4, 4, 3, 1, 'conv2');
    y = t.op('GlobalAveragePool', [y], '/pool/GlobalAveragePool');
    y = t.b.node('Flatten', [y], {}, { name: '/Flatten', outputs: ['logits'] })[0]!;
    t.output(y, 4, 1);
    const m = makeModel(t.g, 11);
    const im = await importModel(m);
    expect(im.dynamicBatch).toBe(true);
    expect(im.notes.join('\n')).toMatch(/2 Reshape target\(s\) with the exported batch 1 baked in rewritten/);
    const one = randomImage([1, 3, 8, 8]);
    expect(maxAbsDiff((await runModel(m, { image: one })).logits!, (await runModel(im.model, { image: one })).logits!)).toBe(0);
    expect((await runModel(im.model, { image: randomImage([3, 3, 8, 8]) })).logits!.length).toBe(12);
  });
});

describe('float16 and quantised graphs', () => {
  it('float16 ↔ float32 conversion is exact on representable values and rounds to nearest even', () => {
    for (const v of [0, 1, -2.5, 65504, 2 ** -24, 0.1]) expect(halfToFloat(floatToHalf(v))).toBeCloseTo(v, 3);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and 1+2^-10: even
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(halfToFloat(0x3555)).toBeCloseTo(0.333251953125, 12);
  });

  it('a float16 model (Casts at the edges, or all-float16 I/O) trains in float32 and records its source type', async () => {
    const src = toyResNet({ bn: 'train14' });
    const ref = toyResNet({ bn: 'train14' });
    for (const keepIo of [true, false]) {
      const m = copy(src);
      toFloat16(m, keepIo);
      const im = await importModel(m);
      expect(im.sourceDtype).toBe('float16');
      expect([...im.model.graph.initializers.values()].every((t) => t.dataType !== 10)).toBe(true);
      expect(im.opCounts.Cast).toBeUndefined();
      // Same function as the float32 graph up to float16 rounding of the weights.
      const f32 = await importModel(ref);
      const [a, b] = [(await runModel(im.model, feeds())).logits!, (await runModel(f32.model, feeds())).logits!];
      expect(maxAbsDiff(a, b) / Math.max(...Array.from(b, Math.abs))).toBeLessThan(1e-2);
    }
    expect((await importModel(ref)).sourceDtype).toBe('float32');
  });

  it('QDQ weights dequantise to what onnxruntime computes; activation pairs are stripped with a note; dynamic ones are an error', async () => {
    const m = toyResNet();
    toQdq(m, false);
    const im = await importModel(m);
    expect(maxAbsDiff((await runModel(m, feeds())).logits!, (await runModel(im.model, feeds())).logits!)).toBeLessThan(1e-5);
    expect(im.notes.join('\n')).toMatch(/7 quantised constant/);

    const act = toyResNet();
    toQdq(act, true);
    const ia = await importModel(act);
    expect(ia.opCounts.QuantizeLinear).toBeUndefined();
    expect(ia.notes.join('\n')).toMatch(/\d+ activation QuantizeLinear→DequantizeLinear pair\(s\) stripped/);
    expect(maxAbsDiff((await runModel(im.model, feeds())).logits!, (await runModel(ia.model, feeds())).logits!)).toBeLessThan(1e-5);

    const dyn = toyResNet();
    toQdq(dyn, true);
    // One activation pair whose scale is computed at run time (dynamic quantisation): not ours to strip.
    const dq = dyn.graph.nodes.find((n) => n.opType === 'DequantizeLinear' && n.inputs[1] === 'act_scale')!;
    dyn.graph.nodes.unshift({ name: 'dynamic_scale', opType: 'ReduceMax', domain: '', inputs: ['image'], outputs: ['scale_rt'], attrs: { keepdims: { type: 'int', value: 0 } } });
    dq.inputs[1] = 'scale_rt';
    await expect(importModel(dyn)).rejects.toThrow(/quantised graph: QuantizeLinear '.*', DequantizeLinear '.*' are not a constant-weight dequantisation.*fine-tune the float model/);
  });
});

describe('input size', () => {
  const symbolic = () => {
    const t = new ToyBuilder(false);
    const x = t.input(3, 8);
    t.g.inputs[0]!.type = { kind: 'tensor', elemType: 1, shape: ['N', 3, 'H', 'W'] };
    let y = t.conv(x, 3, 4, 3, 1, 'c0');
    y = t.op('GlobalAveragePool', [y], '');
    y = t.b.node('Flatten', [y], {}, { name: 'flat', outputs: ['logits'] })[0]!;
    t.output(y, 4);
    return makeModel(t.g, 17);
  };

  it('metadata, then data, then 224 for RGB, each with its reason; --image-size always wins', () => {
    const m = symbolic();
    const shape = ['N', 3, 'H', 'W'];
    expect(chooseImageSize(m, 'image', shape).reason).toMatch(/^224×224 assumed/);
    expect(chooseImageSize(m, 'image', shape, { data: { size: [40, 30], source: 'x' } })).toMatchObject({ size: [40, 30], source: 'data' });
    m.metadata.push({ key: 'image_size', value: '96,80' });
    expect(chooseImageSize(m, 'image', shape, { data: { size: [40, 30], source: 'x' } })).toMatchObject({ size: [96, 80], source: 'metadata' });
    expect(chooseImageSize(m, 'image', shape, { explicit: [12, 10] })).toMatchObject({ size: [12, 10], source: 'option' });
    expect(() => chooseImageSize(m, 'image', ['N', 1, 'H', 'W'].map((d, i) => (i === 1 ? 1 : d)) as never)).not.toThrow(); // metadata still applies
    expect(() => chooseImageSize(symbolic(), 'image', ['N', 1, 'H', 'W'])).toThrow(/1 channel\(s\), so no default size applies; give the image size \(--image-size H,W\)/);
    expect(chooseImageSize(symbolic(), 'image', ['N', 1, 'H', 'W'], { anyChannels: true }).size).toEqual([224, 224]);
  });

  it('--image-size takes H, H,W and HxW', () => {
    expect(parseImageSize('224')).toEqual([224, 224]);
    expect(parseImageSize('224,192')).toEqual([224, 192]);
    expect(parseImageSize('32x48')).toEqual([32, 48]);
    expect(parseImageSize([5, 6])).toEqual([5, 6]);
    expect(() => parseImageSize('224,0')).toThrow(/--image-size should be H or H,W/);
  });

  it('the data’s common size: an image folder whose images share one, none when they differ, none for rendered data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sff-size-'));
    try {
      await writeTinyImageFolder(dir, 2, 3, 20);
      expect(await commonImageSize(dir)).toEqual({ size: [20, 20], source: `the 6 images of ${dir}` });
      await sharp({ create: { width: 21, height: 20, channels: 3, background: '#808080' } }).png().toFile(join(dir, 'class0', 'odd.png'));
      expect(await commonImageSize(dir)).toBeUndefined();
      expect(await commonImageSize('builtin:shapes')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('inspect: costs and the tool’s own exports', () => {
  it('counts a convolution’s multiply-accumulates', async () => {
    const m = toyResNet();
    const shapes = await probeShapes(m, { inputDims: { image: [1, 3, 16, 16] } });
    const conv = m.graph.nodes.find((n) => n.opType === 'Conv')!;
    expect(nodeMacs(conv, shapes, m.graph)).toBe(8 * 16 * 16 * 3 * 3 * 3);
    const gemm = m.graph.nodes.find((n) => n.opType === 'Gemm')!;
    expect(nodeMacs(gemm, shapes, m.graph)).toBe(5 * 16);
  });

  it('reads a model sff-finetune exported: its blocks, costs and ensemble', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sff-insp-'));
    try {
      const r = await finetune({ model: 'builtin:cnnb', data: 'builtin:shapes', imageSize: 16, batchSize: 32, maxStepsPerEpoch: 2, epochs: 1, ensemble: 'all', out, quiet: true, threads: 1 });
      const rep = await inspectModel(r.modelPath!, { batchSize: 8 });
      expect(rep.kind).toBe('sff-export');
      expect(rep.blocks.map((b) => b.name)).toEqual(['block0', 'block1', 'block2']);
      expect(rep.head.classes).toBe(10);
      expect(rep.inputDims).toEqual([1, 3, 16, 16]);
      for (const b of rep.blocks) {
        expect(b.macs).toBeGreaterThan(0);
        expect(b.activationBytes).toBeGreaterThan(0);
      }
      const at16 = await inspectModel(r.modelPath!, { batchSize: 16 });
      at16.blocks.forEach((b, k) => expect(b.activationBytes).toBe(2 * rep.blocks[k]!.activationBytes));
      // The blocks hold every trained weight of the file; only the ensemble's scalar weights are outside them.
      const inBlocks = rep.blocks.reduce((a, b) => a + b.paramCount, 0);
      expect(rep.paramCount - inBlocks).toBeGreaterThanOrEqual(0);
      expect(rep.paramCount - inBlocks).toBeLessThanOrEqual(rep.blocks.length);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
