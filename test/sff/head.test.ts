/**
 * The cheaper head option (--head-pool): how the pool factor is resolved per block, that the
 * pooled head computes mean-of-squares goodness of the aux conv over the p×p-averaged map (a
 * plain-JS reference), and its gradients against central differences.
 */
import { describe, expect, it } from 'vitest';
import { appendHead, parseHeadPool, resolveHeadPool, type HeadSpec } from '../../src/sff/head.js';
import { Graph } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { checkGradients, randomFloats, runGraph } from '../autodiff/harness.js';

describe('--head-pool resolution', () => {
  it('auto pools high-resolution maps by the largest power of two that leaves ≥ 8 px', () => {
    // ResNet18 at 224: layer1..4 outputs.
    expect([56, 28, 14, 7].map((s) => resolveHeadPool('auto', [s, s]))).toEqual([4, 2, 1, 1]);
    // MobileNetV3-small at 224: 112, 56, 28, 14, 7.
    expect([112, 56, 28, 14, 7].map((s) => resolveHeadPool('auto', [s, s]))).toEqual([8, 4, 2, 1, 1]);
    // CNNB at 32: 16, 8, 8; a non-square map goes by its shorter side.
    expect([16, 8].map((s) => resolveHeadPool('auto', [s, s]))).toEqual([2, 1]);
    expect(resolveHeadPool('auto', [32, 17])).toBe(2);
  });
  it('off is 1, a factor is kept but never above the map side, non-2-D outputs are not pooled', () => {
    expect(resolveHeadPool('off', [56, 56])).toBe(1);
    expect(resolveHeadPool(3, [56, 56])).toBe(3);
    expect(resolveHeadPool(4, [2, 3])).toBe(2);
    expect(resolveHeadPool(2, [10])).toBe(1);
  });
  it('parses auto, off and whole factors; rejects anything else naming the flag', () => {
    expect(parseHeadPool('auto')).toBe('auto');
    expect(parseHeadPool('off')).toBe('off');
    expect(parseHeadPool('4')).toBe(4);
    expect(parseHeadPool('1')).toBe('off');
    for (const bad of ['0', '2.5', 'max', '-2']) expect(() => parseHeadPool(bad)).toThrow(/--head-pool/);
  });
});

/** Goodness by plain loops: average-pool p×p (stride p, floor), 'same' conv (pads ⌊k/2⌋ / k−1−⌊k/2⌋), mean of squares. */
function referenceGoodness(x: Float32Array, N: number, C: number, H: number, W: number, w: Float32Array, bias: Float32Array, J: number, k: number, p: number): number[] {
  const h = Math.floor(H / p);
  const wd = Math.floor(W / p);
  const pooled = new Float64Array(N * C * h * wd);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < h; i++)
        for (let j = 0; j < wd; j++) {
          let s = 0;
          for (let a = 0; a < p; a++) for (let bb = 0; bb < p; bb++) s += x[((n * C + c) * H + i * p + a) * W + j * p + bb]!;
          pooled[((n * C + c) * h + i) * wd + j] = s / (p * p);
        }
  const pad = Math.floor(k / 2);
  const out: number[] = [];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < J; o++) {
      let sq = 0;
      for (let i = 0; i < h; i++)
        for (let j = 0; j < wd; j++) {
          let a = bias[o]!;
          for (let c = 0; c < C; c++)
            for (let u = 0; u < k; u++)
              for (let v = 0; v < k; v++) {
                const yi = i + u - pad;
                const yj = j + v - pad;
                if (yi < 0 || yj < 0 || yi >= h || yj >= wd) continue;
                a += w[((o * C + c) * k + u) * k + v]! * pooled[((n * C + c) * h + yi) * wd + yj]!;
              }
          sq += a * a;
        }
      out.push(sq / (h * wd));
    }
  return out;
}

describe('pooled SFF head', () => {
  const [N, C, H, W, J, k] = [2, 3, 9, 8, 4, 3];
  const x = randomFloats(N * C * H * W, 7);
  const w = randomFloats(J * C * k * k, 8, -0.5, 0.5);
  const bias = randomFloats(J, 9, -0.2, 0.2);
  for (const pool of [1, 2, 3])
    it(`goodness of the aux conv over the ${pool}×${pool}-averaged map matches a plain-JS reference`, async () => {
      const g = new Graph();
      g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: [N, C, H, W] } });
      g.initializers.set('h.aux.weight', floatTensor('h.aux.weight', [J, C, k, k], w));
      g.initializers.set('h.aux.bias', floatTensor('h.aux.bias', [J], bias));
      const spec: HeadSpec = { channels: C, classes: J, kernel: k, norm: 'none', seed: 0, pool };
      const out = appendHead(new GraphBuilder(g), 'x', spec, 'h', (n) => n);
      expect(g.nodes.some((n) => n.opType === 'AveragePool')).toBe(pool > 1);
      const r = await runGraph(g, { x: { dims: [N, C, H, W], data: x } }, 17, [out.goodness]);
      const got = Array.from(r[out.goodness]!.data as Float32Array);
      const want = referenceGoodness(x, N, C, H, W, w, bias, J, k, pool);
      expect(got.length).toBe(N * J);
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
    });

  it('gradients through LayerNorm, the pool and the aux conv match central differences', async () => {
    const spec: HeadSpec = { channels: C, classes: J, kernel: k, norm: 'chain', seed: 0, pool: 2 };
    await checkGradients({
      eps: 1e-2,
      rtol: 2e-2,
      atol: 2e-3,
      inputs: {
        x: { dims: [N, C, H, W], trainable: true },
        'h.norm.weight': { dims: [C, 1, 1], trainable: true },
        'h.norm.bias': { dims: [C, 1, 1], trainable: true },
        'h.aux.weight': { dims: [J, C, k, k], trainable: true },
        'h.aux.bias': { dims: [J], trainable: true },
      },
      build: (b, i) => appendHead(b, i.x!, spec, 'h', (n) => i[n]!).goodness,
    });
  });
});
