import { describe, expect, it } from 'vitest';
import { BUILTIN_MODELS, countParameters, createModel, foldBatchNorms, scopeOf, type BuiltinModel } from '../../src/models/index.js';
import { makeDivisible } from '../../src/models/mobilenetv3Small.js';
import { getMetadata, type Model } from '../../src/ir/graph.js';
import { floatTensor, toFloat32 } from '../../src/ir/tensor.js';
import { cloneModel, relDiff, runLogits, testInput } from './helpers.js';

const size = (k: BuiltinModel) => (k === 'cnn' || k === 'cnnb' ? 32 : 224);

describe('parameter counts', () => {
  it.each([
    ['cnn', 10, 175_178],
    ['cnnb', 10, 175_626],
    ['resnet18', 1000, 11_689_512],
    ['mobilenetv3-small', 1000, 2_542_856],
    ['resnet18', 10, 11_689_512 - 990 * 513],
    ['mobilenetv3-small', 10, 2_542_856 - 990 * 1025],
  ] as const)('%s with %i classes has %i parameters', (kind, classes, count) => {
    expect(countParameters(createModel(kind, { classes }))).toBe(count);
  });

  it('cnn Linear input follows the image size', () => {
    const m = createModel('cnn', { imageSize: 64 });
    expect(m.graph.initializers.get('classifier.fc.weight')!.dims).toEqual([10, 128 * 16 * 16]);
  });

  it('BN running statistics are not parameters; folding removes BN parameters', () => {
    const folded = createModel('cnnb', { foldBn: true });
    expect(folded.graph.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    expect(countParameters(folded)).toBe(175_178);
  });
});

describe.each(BUILTIN_MODELS)('%s', (kind) => {
  const S = size(kind);
  it('runs in onnxruntime at batch 2 with finite logits [2, J]', async () => {
    const m = createModel(kind, { classes: 7 });
    const { data, dims } = await runLogits(m, testInput(2, S), S);
    expect(dims).toEqual([2, 7]);
    expect(data.every(Number.isFinite)).toBe(true);
    expect(data.some((v) => v !== 0)).toBe(true);
  });

  it('declares input [N,3,S,S], output [N,J], opset 17 and metadata', () => {
    const m = createModel(kind, { classes: 5, imageSize: 48 });
    const g = m.graph;
    expect(g.inputs).toHaveLength(1);
    expect(g.inputs[0]).toMatchObject({ name: 'input', type: { kind: 'tensor', elemType: 1, shape: ['N', 3, 48, 48] } });
    expect(g.outputs).toEqual([{ name: 'logits', type: { kind: 'tensor', elemType: 1, shape: ['N', 5] } }]);
    expect(m.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(getMetadata(m, 'sff.model')).toBe(kind);
    const pre = JSON.parse(getMetadata(m, 'sff.preprocess')!);
    expect(pre.size).toEqual([48, 48]);
    expect(pre.mean).toEqual(kind.startsWith('cnn') ? [0.4914, 0.4822, 0.4465] : [0.485, 0.456, 0.406]);
    expect(pre.std).toEqual(kind.startsWith('cnn') ? [0.247, 0.2435, 0.2616] : [0.229, 0.224, 0.225]);
    // Default image size.
    expect(createModel(kind).graph.inputs[0]!.type).toMatchObject({ shape: ['N', 3, S, S] });
  });

  it('is deterministic by seed', () => {
    const bytes = (m: Model) => [...m.graph.initializers.values()].map((t) => Buffer.from(t.raw).toString('base64')).join();
    const a = createModel(kind, { seed: 3, imageSize: 32 });
    const b = createModel(kind, { seed: 3, imageSize: 32 });
    const c = createModel(kind, { seed: 4, imageSize: 32 });
    expect(bytes(a)).toBe(bytes(b));
    expect(bytes(a)).not.toBe(bytes(c));
    expect(a.graph.nodes.map((n) => n.name)).toEqual(c.graph.nodes.map((n) => n.name));
  });

  it('has unique node names scoped like the PyTorch exporter', () => {
    const m = createModel(kind);
    const names = m.graph.nodes.map((n) => n.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of m.graph.nodes) {
      expect(n.name).toMatch(new RegExp(`^(/[\\w.]+)*/${n.opType}(_\\d+)?$`));
      expect(n.outputs[0] === 'logits' || n.outputs[0] === `${n.name}_output_0`).toBe(true);
    }
  });
});

describe('initial weights follow PyTorch conventions', () => {
  const stats = (a: Float32Array) => {
    let s = 0;
    let s2 = 0;
    let max = 0;
    for (const v of a) (s += v), (s2 += v * v), (max = Math.max(max, Math.abs(v)));
    const mean = s / a.length;
    return { mean, std: Math.sqrt(s2 / a.length - mean * mean), max };
  };
  it('cnn: U(±1/√fan_in) weights and biases', () => {
    const g = createModel('cnn').graph;
    const w = stats(toFloat32(g.initializers.get('block2.conv.weight')!));
    const bound = 1 / Math.sqrt(64 * 9);
    expect(w.max).toBeLessThanOrEqual(bound);
    expect(w.std).toBeCloseTo(bound / Math.sqrt(3), 3);
    expect(stats(toFloat32(g.initializers.get('classifier.fc.bias')!)).max).toBeLessThanOrEqual(1 / Math.sqrt(8192));
  });
  it('resnet18: kaiming_normal(fan_out) convs, BN 1/0, fc U(±1/√512)', () => {
    const g = createModel('resnet18').graph;
    const w = stats(toFloat32(g.initializers.get('layer3.0.conv2.weight')!));
    expect(w.std / Math.sqrt(2 / (256 * 9))).toBeCloseTo(1, 2);
    expect(Math.abs(w.mean)).toBeLessThan(1e-3);
    expect([...toFloat32(g.initializers.get('bn1.weight')!)].every((v) => v === 1)).toBe(true);
    expect([...toFloat32(g.initializers.get('layer1.0.bn2.bias')!)].every((v) => v === 0)).toBe(true);
    expect([...toFloat32(g.initializers.get('bn1.running_var')!)].every((v) => v === 1)).toBe(true);
    expect(stats(toFloat32(g.initializers.get('fc.weight')!)).max).toBeLessThanOrEqual(1 / Math.sqrt(512));
  });
  it('mobilenetv3-small: depthwise fan_out = out·k², Linear N(0, 0.01) with zero bias', () => {
    const g = createModel('mobilenetv3-small').graph;
    const dw = g.initializers.get('features.10.block.1.0.weight')!;
    expect(dw.dims).toEqual([576, 1, 5, 5]);
    expect(stats(toFloat32(dw)).std / Math.sqrt(2 / (576 * 25))).toBeCloseTo(1, 1);
    expect(stats(toFloat32(g.initializers.get('classifier.0.weight')!)).std).toBeCloseTo(0.01, 3);
    expect([...toFloat32(g.initializers.get('classifier.3.bias')!)].every((v) => v === 0)).toBe(true);
    expect([...toFloat32(g.initializers.get('features.1.block.1.fc1.bias')!)].every((v) => v === 0)).toBe(true);
  });
});

describe('naming', () => {
  it('scopeOf mirrors the exporter', () => {
    expect(scopeOf('')).toBe('');
    expect(scopeOf('layer1.0.conv1')).toBe('/layer1/layer1.0/conv1');
    expect(scopeOf('features.1.block.0.0')).toBe('/features/features.1/block/block.0/block.0.0');
    expect(scopeOf('layer2.0.downsample.1')).toBe('/layer2/layer2.0/downsample/downsample.1');
  });

  it('cnn and cnnb', () => {
    const names = (k: BuiltinModel) => createModel(k).graph.nodes.map((n) => n.name);
    expect(names('cnn')).toEqual([
      '/block0/conv/Conv', '/block0/relu/Relu', '/block0/pool/MaxPool',
      '/block1/conv/Conv', '/block1/relu/Relu', '/block1/pool/MaxPool',
      '/block2/conv/Conv', '/block2/relu/Relu',
      '/classifier/Flatten', '/classifier/fc/Gemm',
    ]);
    const cnnb = createModel('cnnb');
    expect(cnnb.graph.nodes.map((n) => n.name).slice(0, 4)).toEqual(['/block0/conv/Conv', '/block0/bn/BatchNormalization', '/block0/relu/Relu', '/block0/pool/MaxPool']);
    expect([...cnnb.graph.initializers.keys()].slice(0, 6)).toEqual([
      'block0.conv.weight', 'block0.conv.bias', 'block0.bn.weight', 'block0.bn.bias', 'block0.bn.running_mean', 'block0.bn.running_var',
    ]);
    const bn = cnnb.graph.nodes[1]!;
    expect(bn.outputs).toHaveLength(1);
    expect(bn.attrs.epsilon).toEqual({ type: 'float', value: 1e-5 });
    expect(bn.attrs.momentum).toEqual({ type: 'float', value: 0.9 });
    expect(bn.attrs.training_mode).toBeUndefined();
    expect(getMetadata(cnnb, 'sff.dropout')).toBe('0.5');
  });

  it('resnet18 and mobilenetv3-small key nodes', () => {
    const r = new Map(createModel('resnet18').graph.nodes.map((n) => [n.name, n]));
    for (const name of [
      '/conv1/Conv', '/bn1/BatchNormalization', '/relu/Relu', '/maxpool/MaxPool', '/layer1/layer1.0/conv1/Conv',
      '/layer1/layer1.0/relu/Relu', '/layer1/layer1.0/Add', '/layer1/layer1.0/relu_1/Relu',
      '/layer2/layer2.0/downsample/downsample.0/Conv', '/layer2/layer2.0/downsample/downsample.1/BatchNormalization',
      '/avgpool/GlobalAveragePool', '/Flatten', '/fc/Gemm',
    ])
      expect(r.has(name), name).toBe(true);
    expect(r.has('/layer1/layer1.0/downsample/downsample.0/Conv')).toBe(false);
    const mb = createModel('mobilenetv3-small');
    const m = new Map(mb.graph.nodes.map((n) => [n.name, n]));
    for (const name of [
      '/features/features.0/features.0.2/HardSwish', '/features/features.1/block/block.1/avgpool/GlobalAveragePool',
      '/features/features.1/block/block.1/scale_activation/HardSigmoid', '/features/features.3/Add', '/features/features.11/Add',
      '/features/features.12/features.12.2/HardSwish', '/classifier/classifier.0/Gemm', '/classifier/classifier.3/Gemm',
    ])
      expect(m.has(name), name).toBe(true);
    expect(m.has('/features/features.4/Add')).toBe(false);
    expect(m.get('/features/features.4/block/block.1/block.1.0/Conv')!.attrs.group).toEqual({ type: 'int', value: 96 });
    expect(m.get('/features/features.1/block/block.0/block.0.1/BatchNormalization')!.attrs.momentum!.value).toBeCloseTo(0.99, 6);
    expect(getMetadata(mb, 'sff.dropout')).toBe('0.2');
    expect([16, 72, 88, 96, 240, 120, 144, 288, 576].map((c) => makeDivisible(c / 4))).toEqual([8, 24, 24, 24, 64, 32, 40, 72, 144]);
  });
});

describe('BatchNorm folding', () => {
  /** Gives every BN non-trivial statistics and affine parameters (deterministic). */
  function perturbBn(m: Model): void {
    let k = 0;
    for (const n of m.graph.nodes) {
      if (n.opType !== 'BatchNormalization') continue;
      n.inputs.slice(1).forEach((name, slot) => {
        const t = m.graph.initializers.get(name)!;
        const v = Float32Array.from(toFloat32(t), (_, i) => {
          const r = Math.sin(++k * 12.9898 + i) * 0.5; // in [-0.5, 0.5]
          return slot === 0 || slot === 3 ? 1 + r : 0.2 * r; // weight/var around 1, bias/mean around 0
        });
        m.graph.initializers.set(name, floatTensor(name, t.dims, v));
      });
    }
  }

  it.each(['cnnb', 'resnet18', 'mobilenetv3-small'] as const)('%s: folded gives the same logits as unfolded', async (kind) => {
    const S = kind === 'cnnb' ? 32 : 64;
    const x = testInput(2, S);
    // createModel's own fold (identity statistics) …
    const plain = await runLogits(createModel(kind, { imageSize: S, seed: 1 }), x, S);
    const folded = await runLogits(createModel(kind, { imageSize: S, seed: 1, foldBn: true }), x, S);
    expect(relDiff(folded.data, plain.data)).toBeLessThan(1e-4);
    // … and folding non-trivial statistics.
    const m = createModel(kind, { imageSize: S, seed: 1 });
    perturbBn(m);
    const f = cloneModel(m);
    const bnCount = m.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length;
    expect(foldBatchNorms(f)).toBe(bnCount);
    expect(f.graph.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    expect([...f.graph.initializers.keys()].some((n) => /running_(mean|var)$/.test(n))).toBe(false);
    const a = await runLogits(m, x, S);
    const b = await runLogits(f, x, S);
    expect(relDiff(b.data, a.data)).toBeLessThan(1e-4);
  });

  it('folded resnet18 convs get a bias named after the conv', () => {
    const g = createModel('resnet18', { foldBn: true }).graph;
    const conv = g.nodes.find((n) => n.name === '/conv1/Conv')!;
    expect(conv.inputs).toEqual(['input', 'conv1.weight', 'conv1.bias']);
    expect(g.nodes.find((n) => n.name === '/relu/Relu')!.inputs).toEqual(['/conv1/Conv_output_0']);
  });
});

describe('option checks', () => {
  it('rejects bad options and unknown kinds', () => {
    expect(() => createModel('cnn', { classes: 0 })).toThrow(/classes/);
    expect(() => createModel('cnn', { imageSize: 2.5 })).toThrow(/image size/);
    expect(() => createModel('vgg' as BuiltinModel)).toThrow(/unknown model 'vgg'/);
  });
});
