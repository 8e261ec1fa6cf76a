/**
 * MaxPool, AveragePool and GlobalAveragePool gradient rules against central
 * differences. Average pools are linear (eps 0.1 exact up to rounding);
 * MaxPool inputs are distinct values 0.01 apart (a shuffled ramp), so eps 1e-3
 * never changes an arg-max. Tolerance: |analytic − numeric| ≤ 1e-3 + 1e-3·|numeric|.
 */
import { describe, expect, it } from 'vitest';
import type { AttrValue } from '../../src/ir/attrs.js';
import { checkGradients, probeShapesWith, randomFloats, runGraph } from './harness.js';
import { Graph } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { buildGradients } from '../../src/autodiff/buildGradients.js';
import type { MaxPoolInputForm } from '../../src/autodiff/types.js';

function shuffledRamp(n: number, seed: number): Float32Array {
  const r = randomFloats(n, seed);
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => r[a]! - r[b]!);
  const out = new Float32Array(n);
  idx.forEach((k, i) => (out[k] = (i - n / 2) * 0.01));
  return out;
}

const maxCases: [string, number[], Record<string, AttrValue>][] = [
  ['3x3/2 pad 1 (ResNet stem)', [2, 3, 9, 9], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
  ['3x3/2 pad 1 on an even input', [1, 2, 8, 8], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
  ['2x2/2', [2, 3, 8, 8], { kernel_shape: [2, 2], strides: [2, 2] }],
  ['3x3/1 pad 1 (SPP-style, heavy overlap)', [1, 2, 5, 5], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }],
  ['3x3/2 ceil_mode', [1, 2, 8, 8], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }],
  ['2x2/1 dilation 2, asymmetric pads', [1, 2, 7, 7], { kernel_shape: [2, 2], dilations: [2, 2], pads: [0, 1, 1, 0] }],
  ['auto_pad SAME_UPPER 3x3/2', [1, 2, 7, 7], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }],
];

describe('MaxPool gradient (central differences)', () => {
  for (const [name, dims, attrs] of maxCases)
    it(name, async () => {
      const n = dims.reduce((p, d) => p * d, 1);
      await checkGradients({
        eps: 1e-3, rtol: 1e-3, atol: 1e-3,
        inputs: { x: { dims, data: shuffledRamp(n, 3), trainable: true } },
        build: (b, i) => b.op('MaxPool', [i.x!], attrs),
      });
    });
  it('uses the forward node’s Indices output when present', async () => {
    const dims = [2, 2, 6, 6];
    const r = await checkGradients({
      eps: 1e-3, rtol: 1e-3, atol: 1e-3,
      inputs: { x: { dims, data: shuffledRamp(72 * 2, 4), trainable: true } },
      build: (b, i) => b.node('MaxPool', [i.x!], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, { outputs: 2 })[0]!,
    });
    const maxPools = r.graph.nodes.filter((n) => n.opType === 'MaxPool');
    if (maxPools.length !== 1) throw new Error(`expected no extra MaxPool, found ${maxPools.length}`);
  });
});

const tilingCases: [string, number[], Record<string, AttrValue>][] = [
  ['2x2/2 (CNNB)', [2, 3, 8, 8], { kernel_shape: [2, 2], strides: [2, 2] }],
  ['3x2/(3,2), floor mode leaves a row and a column out', [2, 2, 7, 7], { kernel_shape: [3, 2], strides: [3, 2] }],
  ['auto_pad VALID 2x2/2 on an odd input', [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'VALID' }],
];

describe("MaxPool gradient, 'mask' formulation (central differences)", () => {
  for (const [name, dims, attrs] of tilingCases)
    it(name, async () => {
      const n = dims.reduce((p, d) => p * d, 1);
      const r = await checkGradients({
        eps: 1e-3, rtol: 1e-3, atol: 1e-3,
        formulations: { maxPoolInput: 'mask' },
        inputs: { x: { dims, data: shuffledRamp(n, 5), trainable: true } },
        build: (b, i) => b.op('MaxPool', [i.x!], attrs),
      });
      const ops = r.graph.nodes.filter((n) => n.name.startsWith('/grad')).map((n) => n.opType);
      expect(ops).not.toContain('ScatterElements');
      expect(ops).toContain('CumSum');
    });

  /** dX for `x` under one formulation (the analytic gradient only: ties make central differences meaningless). */
  async function maxPoolGrad(x: Float32Array, dims: number[], attrs: Record<string, AttrValue>, maxPoolInput: MaxPoolInputForm): Promise<Float32Array> {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: dims } });
    const b = new GraphBuilder(g);
    const y = b.op('MaxPool', ['x'], attrs);
    const w = b.op('Mul', [y, y]);
    const loss = b.op('ReduceSum', [b.op('Add', [w, y])], { keepdims: 0 });
    g.outputs = [{ name: loss }];
    const feeds = { x: { dims, data: x } };
    const shapes = await probeShapesWith(g, feeds);
    const grads = buildGradients({ graph: g, loss, wrt: ['x'], shapes, formulations: { maxPoolInput } });
    const out = await runGraph(g, feeds, 17, [grads.get('x')!]);
    return Float32Array.from(out[grads.get('x')!]!.data as Float32Array);
  }

  it('gives ties to the first maximum in window order, exactly as the Indices scatter does', async () => {
    const dims = [2, 3, 8, 9];
    const n = dims.reduce((p, d) => p * d, 1);
    // Values from {0, 1, 2}: most windows hold tied maxima (constant windows included).
    const x = Float32Array.from(randomFloats(n, 11), (v) => Math.floor((v + 1) * 1.5));
    for (const attrs of [{ kernel_shape: [2, 2], strides: [2, 2] }, { kernel_shape: [3, 3], strides: [3, 3] }] as Record<string, AttrValue>[]) {
      const mask = await maxPoolGrad(x, dims, attrs, 'mask');
      const scatter = await maxPoolGrad(x, dims, attrs, 'scatter');
      expect(Array.from(mask)).toEqual(Array.from(scatter));
      expect(mask.some((v) => v !== 0)).toBe(true);
    }
  });

  it("falls back to the scatter for overlapping windows under 'auto', and refuses them under 'mask'", async () => {
    const dims = [1, 2, 8, 8];
    const attrs = { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] };
    const r = await checkGradients({
      eps: 1e-3, rtol: 1e-3, atol: 1e-3,
      formulations: { maxPoolInput: 'auto' },
      inputs: { x: { dims, data: shuffledRamp(128, 6), trainable: true } },
      build: (b, i) => b.op('MaxPool', [i.x!], attrs),
    });
    expect(r.graph.nodes.some((n) => n.opType === 'ScatterElements')).toBe(true);
    await expect(maxPoolGrad(shuffledRamp(128, 6), dims, attrs, 'mask')).rejects.toThrow(/tile the input/);
  });
});

describe('MaxPool gradient for WebGPU, without Indices (central differences)', () => {
  for (const [name, dims, attrs] of maxCases)
    it(name, async () => {
      const n = dims.reduce((p, d) => p * d, 1);
      const r = await checkGradients({
        eps: 1e-3, rtol: 1e-3, atol: 1e-3, target: 'webgpu',
        inputs: { x: { dims, data: shuffledRamp(n, 3), trainable: true } },
        build: (b, i) => b.op('MaxPool', [i.x!], attrs),
      });
      // The WebGPU EP's MaxPool has no Indices output, and the variant needs no scatter.
      const unsupported = r.graph.nodes.filter((x) => (x.opType === 'MaxPool' && x.outputs.length > 1) || x.opType === 'ScatterElements');
      expect(unsupported.map((x) => x.name)).toEqual([]);
    });
  it('gives a tie to the first maximum in window order, as the Indices kernel does', async () => {
    // A constant input ties every window; both variants must route all of dY to each window's first element.
    const dyOf = async (target: 'cpu' | 'webgpu') => {
      const g = new Graph();
      g.initializers.set('x', floatTensor('x', [1, 1, 4, 5], new Array(20).fill(0.5)));
      const b = new GraphBuilder(g);
      const y = b.op('MaxPool', ['x'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const loss = b.op('ReduceSum', [b.op('Mul', [y, b.constFloat([1, 2, 3, 4, 5, 6], [1, 1, 2, 3])])], { keepdims: 0 });
      g.outputs = [{ name: loss }];
      const shapes = await probeShapesWith(g, {});
      const grads = buildGradients({ graph: g, loss, wrt: ['x'], shapes, target });
      return (await runGraph(g, {}, 17, [grads.get('x')!]))[grads.get('x')!]!.data as Float32Array;
    };
    const cpu = await dyOf('cpu');
    expect([...(await dyOf('webgpu'))]).toEqual([...cpu]);
    expect(cpu.reduce((a, v) => a + v, 0)).toBe(21);
  });
});

const avgCases: [string, number[], Record<string, AttrValue>][] = [
  ['3x3/2 pad 1, count_include_pad 0', [2, 3, 8, 8], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
  ['3x3/2 pad 1, count_include_pad 1', [2, 3, 8, 8], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }],
  ['2x2/2 no pad', [2, 3, 6, 6], { kernel_shape: [2, 2], strides: [2, 2] }],
  ['3x3/1 asymmetric pads [0,1,2,0]', [1, 2, 5, 5], { kernel_shape: [3, 3], pads: [0, 1, 2, 0] }],
  ['3x3/2 ceil_mode, count_include_pad 0', [1, 2, 8, 8], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }],
  ['3x3/2 ceil_mode pad 1, count_include_pad 1', [1, 2, 8, 8], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }],
  ['auto_pad SAME_UPPER 3x3/2', [1, 2, 7, 7], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }],
];

describe('AveragePool gradient (central differences)', () => {
  for (const [name, dims, attrs] of avgCases)
    it(name, async () => {
      await checkGradients({
        eps: 0.1, rtol: 1e-3, atol: 1e-3,
        inputs: { x: { dims, trainable: true } },
        build: (b, i) => b.op('AveragePool', [i.x!], attrs),
      });
    });
});

describe('GlobalAveragePool gradient (central differences)', () => {
  for (const dims of [[2, 3, 4, 5], [3, 4, 1, 1], [2, 3, 7]])
    it(`x [${dims}]`, async () => {
      await checkGradients({ eps: 0.1, rtol: 1e-3, atol: 1e-3, inputs: { x: { dims, trainable: true } }, build: (b, i) => b.op('GlobalAveragePool', [i.x!]) });
    });
});
