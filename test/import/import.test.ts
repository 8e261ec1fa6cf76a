/** importModel on graphs built in-test (core) and on real exports (when present). */
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { Graph, makeModel, type Model } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { floatTensor, int64Tensor, scalarFloat } from '../../src/ir/tensor.js';
import { DataType } from '../../src/ir/types.js';
import { loadModel } from '../../src/onnx/io.js';
import { importModel, ImportError, UnsupportedOpError } from '../../src/import/index.js';
import { ToyBuilder, toyResNet } from './toy.js';
import { maxAbsDiff, randomImage, runModel } from './run.js';
import { hasShared, hasTorchvision, SHARED_MOBILENET, torchvision, warnSkip } from '../helpers/shared.js';

warnSkip('test/import/import.test.ts', 'shared');
warnSkip('test/import/import.test.ts', 'torchvision');

const ops = (m: Model) => m.graph.nodes.map((n) => n.opType);

describe('importModel: toy ResNet', () => {
  it('finds the head and keeps outputs identical', async () => {
    const m = toyResNet();
    const im = await importModel(m);
    expect(im.input).toBe('image');
    expect(im.head.nodes.map((n) => n.opType)).toEqual(['GlobalAveragePool', 'Flatten', 'Gemm']);
    expect(im.head.classes).toBe(5);
    expect(im.head.classifier).toBe('/fc/Gemm');
    expect(im.head.paramCount).toBe(5 * 16 + 5);
    expect(im.feature).toBe(im.model.graph.nodes.find((n) => n.name === '/layer2/layer2.0/relu_1/Relu')!.outputs[0]);
    expect(im.shapes.get(im.feature)!.dims).toEqual([1, 16, 4, 4]);
    expect(im.dynamicBatch).toBe(true);
    expect(im.hasBatchNorm).toBe(false);
    const feeds = { image: randomImage([3, 3, 16, 16]) };
    expect(maxAbsDiff((await runModel(m, feeds)).logits!, (await runModel(im.model, feeds)).logits!)).toBe(0);
    expect(m.graph.nodes.length).toBe(im.model.graph.nodes.length); // source untouched, nothing to remove
  });

  for (const bn of ['train13', 'train14'] as const)
    it(`training-form BatchNormalization (${bn}) becomes inference BN on running statistics`, async () => {
      const im = await importModel(toyResNet({ bn, opset: bn === 'train13' ? 13 : 14 }));
      const bns = im.model.graph.nodes.filter((n) => n.opType === 'BatchNormalization');
      expect(bns.length).toBe(6);
      for (const n of bns) {
        expect(n.outputs).toHaveLength(1);
        expect(n.attrs.training_mode).toBeUndefined();
      }
      expect(im.hasBatchNorm).toBe(true);
      expect(im.buffers).toHaveLength(12);
      expect(im.notes.join('\n')).toMatch(/training-mode BatchNormalization/);
      const ref = toyResNet({ bn: 'eval', opset: 14 });
      const feeds = { image: randomImage([2, 3, 16, 16]) };
      expect(maxAbsDiff((await runModel(ref, feeds)).logits!, (await runModel(im.model, feeds)).logits!)).toBe(0);
    });
});

/** Constant nodes, Identity chains, a shared bias, Dropout with training_mode, and Shape→Gather→Unsqueeze→Concat→Reshape. */
function messyModel(opset: number): Model {
  const t = new ToyBuilder(true);
  const b = t.b;
  const x = t.input(3, 8);
  const w0 = t.param('w0', [4, 3, 3, 3]);
  const wId = b.node('Identity', [b.node('Identity', [w0], {}, { name: 'Identity_0' })[0]!], {}, { name: 'Identity_1' })[0]!;
  const bias = b.initializer(floatTensor('shared_bias', [4], [0, 0, 0, 0]));
  let y = b.node('Conv', [x, wId, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: '/c0/Conv' })[0]!;
  y = b.op('Relu', [y], {}, '/c0/Relu');
  y = b.node('Conv', [y, t.param('w1', [4, 4, 3, 3]), bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }, { name: '/c1/Conv' })[0]!;
  const ratio = b.node('Constant', [], { value: scalarFloat('r', 0) }, { name: '/drop/Constant' })[0]!;
  const train = b.node('Constant', [], { value: { name: 't', dataType: DataType.BOOL, dims: [], raw: new Uint8Array([1]) } }, { name: '/drop/Constant_1' })[0]!;
  y = b.node('Dropout', [y, ratio, train], {}, { name: '/drop/Dropout', outputs: 2 })[0]!;
  const shape = b.op('Shape', [y], {}, '/Shape');
  const idx = b.node('Constant', [], { value: int64Tensor('i', [], [0]) }, { name: '/Constant' })[0]!;
  const n = b.op('Gather', [shape, idx], { axis: 0 }, '/Gather');
  const axes = b.initializer(int64Tensor('axes0', [1], [0]));
  const nU = opset >= 13 ? b.op('Unsqueeze', [n, axes], {}, '/Unsqueeze') : b.op('Unsqueeze', [n], { axes: [0] }, '/Unsqueeze');
  const minus1 = b.node('Constant', [], { value_ints: [-1] }, { name: '/Constant_1' })[0]!;
  const target = b.op('Concat', [nU, minus1], { axis: 0 }, '/Concat');
  y = b.op('Reshape', [y, target], {}, '/Reshape');
  const out = b.node('Gemm', [y, t.param('fc.w', [3, 64]), t.param('fc.b', [3])], { transB: 1 }, { name: '/fc/Gemm', outputs: ['logits'] })[0]!;
  t.output(out, 3);
  return makeModel(t.g, opset);
}

describe('importModel: normalisation', () => {
  it('folds constants and shape arithmetic, drops Identity/Dropout, unties shared biases, keeps the batch dynamic', async () => {
    const m = messyModel(13);
    const im = await importModel(m);
    expect(ops(im.model).sort()).toEqual(['Conv', 'Conv', 'Gemm', 'Relu', 'Reshape']);
    const convs = im.model.graph.nodes.filter((n) => n.opType === 'Conv');
    expect(convs[0]!.inputs[2]).not.toBe(convs[1]!.inputs[2]);
    expect(im.paramCount).toBe(4 * 27 + 4 + 4 * 36 + 4 + 3 * 64 + 3);
    expect(im.notes.join('\n')).toMatch(/Dropout/);
    expect(im.dynamicBatch).toBe(true);
    for (const batch of [1, 3]) {
      const feeds = { image: randomImage([batch, 3, 8, 8]) };
      expect(maxAbsDiff((await runModel(m, feeds)).logits!, (await runModel(im.model, feeds)).logits!)).toBe(0);
    }
    // The head starts at the last spatial map (a Reshape of a 4×4 map, no pooling).
    expect(im.head.nodes.map((n) => n.opType)).toEqual(['Reshape', 'Gemm']);
    expect(im.shapes.get(im.feature)!.dims).toEqual([1, 4, 4, 4]);
  });

  it('accepts opset-18 ReduceMean with axes as an input (dynamo style) as global pooling', async () => {
    const t = new ToyBuilder(false);
    const x = t.input(3, 8);
    let y = t.conv(x, 3, 6, 3, 1, 'c0');
    y = t.op('Relu', [y], '');
    const axes = t.b.initializer(int64Tensor('axes', [2], [2, 3]));
    y = t.op('ReduceMean', [y, axes], '', { keepdims: 0 });
    const out = t.b.node('MatMul', [y, t.param('w', [6, 2])], {}, { name: 'mm' })[0]!;
    const logits = t.b.node('Add', [out, t.param('b', [2])], {}, { name: 'bias', outputs: ['logits'] })[0]!;
    t.output(logits, 2);
    const im = await importModel(makeModel(t.g, 18));
    expect(im.head.nodes.map((n) => n.opType)).toEqual(['ReduceMean', 'MatMul', 'Add']);
    expect(im.head.paramCount).toBe(14);
    expect(im.head.classifier).toBe('mm');
    expect(im.paramCount).toBe(6 * 27 + 6 + 14);
  });

  it('makes a fixed batch dynamic and honours --image-size for symbolic sizes', async () => {
    const t = new ToyBuilder(false);
    const x = t.input(3, 8, 1);
    t.g.inputs[0]!.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: [1, 3, 'H', 'W'] };
    let y = t.conv(x, 3, 5, 1, 1, 'c0');
    y = t.op('GlobalAveragePool', [y], '');
    y = t.b.node('Flatten', [y], {}, { name: 'flat', outputs: ['logits'] })[0]!;
    t.output(y, 5, 1);
    const m = makeModel(t.g, 13);
    await expect(importModel(m)).rejects.toThrow(/image size.*--image-size/);
    const im = await importModel(m, { imageSize: [12, 10] });
    expect(im.dynamicBatch).toBe(true);
    expect(im.inputDims).toEqual([1, 3, 12, 10]);
    expect(im.model.graph.inputs[0]!.type).toMatchObject({ shape: ['N', 3, 12, 10] });
    const out = await runModel(im.model, { image: randomImage([2, 3, 12, 10]) });
    expect(out.logits!.length).toBe(10);
  });

  it('reports every unsupported op by node name and op type', async () => {
    const t = new ToyBuilder(false);
    const x = t.input(3, 8);
    let y = t.conv(x, 3, 4, 3, 1, 'c0');
    y = t.b.node('Cos', [y], {}, { name: 'weird_act' })[0]!;
    y = t.b.node('Erf', [y], {}, { name: 'erf_1' })[0]!;
    y = t.b.node('Erf', [y], {}, { name: 'erf_2' })[0]!;
    y = t.b.node('MyOp', [y], {}, { name: 'custom', domain: 'com.example', outputs: ['logits'] })[0]!;
    t.output(y, 4);
    const m = makeModel(t.g, 13);
    const err = await importModel(m).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    const msg = (err as Error).message;
    expect(msg).toContain("Cos (node 'weird_act')");
    // No --freeze advice: a frozen block still runs forward, which these ops cannot.
    expect(msg).not.toMatch(/freeze|frozen/);
    expect(msg).toContain("Erf (nodes 'erf_1', 'erf_2')");
    expect(msg).toContain('com.example::MyOp');
    expect((err as UnsupportedOpError).nodes).toHaveLength(4);
  });

  it('rejects a graph without an image input with an ImportError', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', 10] } });
    const b = new GraphBuilder(g);
    b.node('Gemm', ['x', b.initializer(floatTensor('w', [2, 10], new Float32Array(20)))], { transB: 1 }, { outputs: ['y'] });
    g.outputs.push({ name: 'y' });
    await expect(importModel(makeModel(g, 13))).rejects.toThrow(ImportError);
  });
});

describe('importModel: head rules', () => {
  /** conv body → [1×1 expand conv + HardSwish] → GAP → Flatten → Gemm, or a SqueezeNet 1×1-conv classifier. */
  function headModel(kind: 'projection' | 'squeeze'): Model {
    const t = new ToyBuilder(false);
    let y = t.conv(t.input(3, 8), 3, 4, 3, 1, 'c0');
    y = t.op('Relu', [y], '');
    if (kind === 'projection') {
      y = t.conv(y, 4, 12, 1, 1, 'proj');
      y = t.op('HardSwish', [y], '');
      y = t.op('GlobalAveragePool', [y], '');
      y = t.op('Flatten', [y], '', { axis: 1 });
      y = t.b.node('Gemm', [y, t.param('w', [3, 12]), t.param('b', [3])], { transB: 1 }, { name: 'fc', outputs: ['logits'] })[0]!;
    } else {
      y = t.conv(y, 4, 3, 1, 1, 'cls');
      y = t.op('Relu', [y], '');
      y = t.op('GlobalAveragePool', [y], '');
      y = t.b.node('Flatten', [y], { axis: 1 }, { name: 'flat', outputs: ['logits'] })[0]!;
    }
    t.output(y, 3);
    return makeModel(t.g, 14);
  }

  it('a channel-expanding 1×1 conv before global pooling belongs to the head (optionally not)', async () => {
    const m = headModel('projection');
    const im = await importModel(m);
    expect(im.head.nodes.map((n) => n.opType)).toEqual(['Conv', 'HardSwish', 'GlobalAveragePool', 'Flatten', 'Gemm']);
    expect(im.head.projection.map((n) => n.opType)).toEqual(['Conv', 'HardSwish']);
    expect(im.shapes.get(im.feature)!.dims).toEqual([1, 4, 8, 8]);
    const keep = await importModel(m, { projectionInHead: false });
    expect(keep.head.nodes.map((n) => n.opType)).toEqual(['GlobalAveragePool', 'Flatten', 'Gemm']);
    expect(keep.shapes.get(keep.feature)!.dims).toEqual([1, 12, 8, 8]);
  });

  it('a SqueezeNet-style 1×1-conv classifier is the head', async () => {
    const im = await importModel(headModel('squeeze'));
    expect(im.head.nodes.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'GlobalAveragePool', 'Flatten']);
    expect(im.head.classes).toBe(3);
    expect(im.head.paramCount).toBe(3 * 4 + 3);
    expect(im.shapes.get(im.feature)!.dims).toEqual([1, 4, 8, 8]);
  });
});

describe.skipIf(!hasShared)('importModel: shared MobileNetV3 (TFLite-derived)', () => {
  it('keeps input t159, dynamic batch, head with the 960-channel projection', async () => {
    const m = loadModel(SHARED_MOBILENET);
    const im = await importModel(m);
    expect(im.input).toBe('t159');
    expect(im.dynamicBatch).toBe(true);
    expect(im.head.classes).toBe(1001);
    expect(im.feature).toBe('t71');
    expect(im.head.projection[0]!.name).toBe('t5');
    expect(im.paramCount).toBe(3913369);
    const feeds = { t159: randomImage([2, 3, 224, 224]) };
    const a = await runModel(m, feeds);
    const b = await runModel(im.model, feeds);
    expect(maxAbsDiff(a.t14!, b.t14!)).toBe(0);
  }, 30_000);
});

describe.skipIf(!hasTorchvision)('importModel: torchvision exports', () => {
  it('squeezenet1_1: 1×1-conv classifier head', async () => {
    const im = await importModel(loadModel(torchvision('squeezenet1_1_eval_op13')));
    expect(im.head.nodes.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'GlobalAveragePool', 'Flatten']);
    expect(im.head.classifier).toBe('/classifier/classifier.1/Conv');
    expect(im.head.classes).toBe(1000);
  }, 30_000);
  it('resnet18 train op13 (5-output BN) and op17 (training_mode=1) import to the same inference graph', async () => {
    const a = await importModel(loadModel(torchvision('resnet18_train_op13')));
    const b = await importModel(loadModel(torchvision('resnet18_train_op17')));
    expect(a.opCounts.BatchNormalization).toBe(20);
    expect(a.opCounts).toEqual(b.opCounts);
    expect(a.buffers).toHaveLength(40);
    const feeds = { input: randomImage([1, 3, 224, 224]) };
    // Same weights and running statistics (seed 0; the tracing pass updated them identically).
    expect(maxAbsDiff((await runModel(a.model, feeds)).logits!, (await runModel(b.model, feeds)).logits!)).toBeLessThan(1e-4);
  }, 30_000);
});
