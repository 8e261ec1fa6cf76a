/**
 * The throughput bench's method: MACs of a step from the graph, ratio statistics and the
 * spread flag, and one interleaved measurement of every default variant (no timed assertions:
 * only that each variant ran every round and the ratios are the paired medians).
 */
import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { probeShapes } from '../../src/runtime/probe.js';
import { makeModel } from '../../src/ir/graph.js';
import { stepArithmetic } from '../../src/bench/arithmetic.js';
import { defaultVariants, measureInterleaved, ratioStats, SPREAD_FLAG, throughputMarkdown, variantArithmetic } from '../../src/bench/throughput.js';
import { quantile } from '../../src/util/stats.js';

describe('step arithmetic', () => {
  it('counts forward, weight-gradient and input-gradient MACs of convs and Gemms', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: [2, 3, 8, 8] } });
    g.initializers.set('w1', floatTensor('w1', [4, 3, 3, 3], new Float32Array(108)));
    g.initializers.set('w2', floatTensor('w2', [6, 2, 3, 3], new Float32Array(108)));
    g.initializers.set('fc', floatTensor('fc', [5, 6 * 4 * 4], new Float32Array(480)));
    const b = new GraphBuilder(g);
    const c1 = b.op('Conv', ['x', 'w1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    const c2 = b.op('Conv', [c1, 'w2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2], group: 2 });
    const y = b.op('Gemm', [b.op('Flatten', [c2], { axis: 1 }), 'fc'], { transB: 1 });
    g.outputs = [{ name: y }];
    const shapes = await probeShapes(makeModel(g), { batch: 2 });
    const f1 = 4 * 8 * 8 * 3 * 9; // per image: outputs × (C_in/g)·k²
    const f2 = 6 * 4 * 4 * 2 * 9;
    const f3 = 5 * 96;
    // Everything trained: the first conv has no input gradient, the others have both.
    expect(stepArithmetic(g, shapes, new Set(['w1', 'w2', 'fc']), 2)).toEqual({ forward: f1 + f2 + f3, train: 2 * f1 + 3 * f2 + 3 * f3 });
    // Only the classifier trained (a frozen body): nothing upstream of it is differentiated.
    expect(stepArithmetic(g, shapes, new Set(['fc']), 2)).toEqual({ forward: f1 + f2 + f3, train: f1 + f2 + 2 * f3 });
  });

  it('SFF adds its heads to the network; the pooled head costs less; BP trains the whole network', async () => {
    const c = { model: 'builtin:cnnb', imageSize: 32, batch: 4 };
    const fwd = await variantArithmetic({ name: 'f', kind: 'forward' }, c);
    const bp = await variantArithmetic({ name: 'bp', kind: 'train', setup: { method: 'bp' } }, c);
    const sff = await variantArithmetic({ name: 'sff', kind: 'train', setup: { method: 'sff' } }, c);
    const pooled = await variantArithmetic({ name: 'p', kind: 'train', setup: { method: 'sff', headPool: 2 } }, c);
    const exported = await variantArithmetic({ name: 'e', kind: 'export', setup: { method: 'sff' } }, c);
    // CNNB at 32 px: 10.4 M MACs (3→32 at 32², 32→64 at 16², 64→128 at 8², classifier).
    const net = 32 * 32 * 32 * 27 + 16 * 16 * 64 * 288 + 8 * 8 * 128 * 576 + 10 * 128 * 8 * 8;
    expect(fwd.forward).toBe(net);
    expect(bp.forward).toBe(net);
    // Heads: 5×5 convs to 10 classes on 32@16², 64@8², 128@8².
    const heads = 10 * 25 * (16 * 16 * 32 + 8 * 8 * 64 + 8 * 8 * 128);
    expect(sff.forward).toBe(net - 10 * 128 * 8 * 8 + heads);
    expect(exported.forward).toBe(sff.forward);
    expect(pooled.forward).toBeLessThan(sff.forward);
    expect(bp.train).toBeCloseTo(3 * net - 32 * 32 * 32 * 27, 6);
    expect(sff.train / bp.train).toBeGreaterThan(1);
  });
});

describe('ratio statistics', () => {
  it('takes interpolated quartiles and flags a spread over 10%', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    const tight = ratioStats([1.0, 1.01, 0.99, 1.02, 0.98]);
    expect(tight.median).toBe(1);
    expect(tight.spread).toBeLessThanOrEqual(SPREAD_FLAG);
    expect(tight.flagged).toBe(false);
    const loose = ratioStats([0.6, 1.0, 0.8, 1.2, 0.7]);
    expect(loose.spread).toBeCloseTo((1.0 - 0.7) / 0.8, 3);
    expect(loose.flagged).toBe(true);
  });
});

describe('interleaved measurement', () => {
  it('builds every default variant in one process, steps them round by round and reports paired ratios', async () => {
    const { variants, ratios } = defaultVariants({ headPool: 2 });
    const r = await measureInterleaved({ model: 'builtin:cnnb', imageSize: 16, batch: 8, variants, ratios, memArena: false, threads: 1, warmup: 1, minRounds: 3, maxRounds: 3, maxSeconds: 60 });
    expect(r.rounds).toBe(3);
    expect(r.variants.map((v) => v.name)).toEqual(['forward', 'bp', 'sff', 'sff head-pool 2', 'sff export']);
    for (const v of r.variants) {
      expect(v.msMin).toBeGreaterThan(0);
      expect(v.msQ1).toBeLessThanOrEqual(v.msQ3);
      expect(v.arithmetic.forward).toBeGreaterThan(0);
    }
    expect(r.variants.find((v) => v.name === 'sff')!.msPerSession).toHaveLength(3);
    const sffVsBp = r.ratios.find((x) => x.name === 'SFF ÷ BP')!;
    const bp = r.variants.find((v) => v.name === 'bp')!;
    const sff = r.variants.find((v) => v.name === 'sff')!;
    expect(sffVsBp.arithmetic).toBeCloseTo(bp.arithmetic.train / sff.arithmetic.train, 2);
    expect(sffVsBp.q1).toBeLessThanOrEqual(sffVsBp.median);
    expect(sffVsBp.median).toBeLessThanOrEqual(sffVsBp.q3);
    const md = throughputMarkdown({ machine: { cpus: 2, node: 'v', ort: '1', loadAverage: [2, 2, 2] }, speed: [r], memory: [], profiles: [], seconds: 1 });
    expect(md).toContain('**cnnb 16×16 b8** (3 rounds, 1 threads)');
    expect(md).toContain('| SFF ÷ BP |');
    expect(md).toContain('| sff head-pool 2 |');
    expect(md).toContain('| SFF ÷ (exported SFF ÷ 3) |');
  }, 60_000);
});
