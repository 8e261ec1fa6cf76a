import { describe, expect, it } from 'vitest';
import { buildGradients } from '../../src/autodiff/buildGradients.js';
import { hasGradientRule, gradientRules } from '../../src/autodiff/registry.js';
import { NoGradientRuleError } from '../../src/autodiff/types.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { Graph } from '../../src/ir/graph.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { checkGradients, probeShapesWith, randomFloats, runGraph } from './harness.js';

// eps 1e-3; |analytic - numeric| <= 1e-3 + 1e-2|numeric| unless stated.
const tol = { eps: 1e-3, rtol: 1e-2, atol: 1e-3 };

/** A graph with float input x [2,3] and trainable initializer w [2,3]. */
function base(): { g: Graph; b: GraphBuilder } {
  const g = new Graph();
  g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: [2, 3] } });
  g.initializers.set('w', floatTensor('w', [2, 3], randomFloats(6, 3)));
  return { g, b: new GraphBuilder(g) };
}
const xFeed = { x: { dims: [2, 3], data: randomFloats(6, 4) } };

describe('buildGradients', () => {
  it('skips a non-differentiable shape path (Shape → Gather → Concat → Reshape) and integer/bool side paths', async () => {
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [2, 3, 2], trainable: true }, w: { dims: [3, 2], trainable: true } },
      build: (b, i) => {
        const h = b.op('Mul', [i.x!, i.w!]);
        const batch = b.op('Gather', [b.op('Shape', [h]), b.constInt64([0])], { axis: 0 });
        const shape = b.op('Concat', [batch, b.constInt64([-1])], { axis: 0 });
        const flat = b.op('Reshape', [h, shape]);
        // ArgMax/Equal/Cast-to-float and Floor: no gradient flows, no rule needed.
        const am = b.op('ArgMax', [flat], { axis: 1, keepdims: 1 });
        const eq = b.op('Cast', [b.op('Equal', [am, b.constInt64([0])])], { to: 1 });
        const fl = b.op('Floor', [flat]);
        return b.op('Add', [b.op('Mul', [flat, eq]), b.op('Mul', [fl, b.constFloat([0.1])])]);
      },
    });
  });

  it('throws NoGradientRuleError naming node, op and block, suggesting --freeze', async () => {
    const { g, b } = base();
    const h = b.op('Atan', [b.op('Mul', ['x', 'w'])], {}, 'blk/Atan');
    const loss = b.op('ReduceSum', [h], { keepdims: 0 });
    g.outputs = [{ name: loss }];
    const shapes = await probeShapesWith(g, xFeed);
    let err: unknown;
    try {
      buildGradients({ graph: g, loss, wrt: ['w'], shapes, block: 'block3' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoGradientRuleError);
    const e = err as NoGradientRuleError;
    expect(e.nodeName).toBe('blk/Atan');
    expect(e.opType).toBe('Atan');
    expect(e.block).toBe('block3');
    expect(e.message).toMatch(/op Atan/);
    expect(e.message).toMatch(/'blk\/Atan'/);
    expect(e.message).toMatch(/block3/);
    expect(e.message).toMatch(/--freeze block3/);
  });

  it('ignores ops without rules off the loss path, and the graph input unless listed', async () => {
    const { g, b } = base();
    const h = b.op('Mul', ['x', 'w']);
    b.op('Atan', [h]); // consumer of a trainable-dependent value that the loss does not need
    const loss = b.op('ReduceSum', [b.op('Exp', [h])], { keepdims: 0 });
    g.outputs = [{ name: loss }];
    const shapes = await probeShapesWith(g, xFeed);
    const before = g.nodes.length;
    const grads = buildGradients({ graph: g, loss, wrt: ['w'], shapes });
    expect([...grads.keys()]).toEqual(['w']);
    expect(grads.get('w')).toBe('/grad/w');
    const added = g.nodes.slice(before);
    expect(added.some((n) => n.outputs.includes('/grad/x'))).toBe(false);
    // d/dw sum(exp(x*w)) = x*exp(x*w)
    const out = await runGraph(g, xFeed, 17, ['/grad/w']);
    const xv = xFeed.x.data;
    const wv = randomFloats(6, 3);
    const got = out['/grad/w']!.data as Float32Array;
    for (let k = 0; k < 6; k++) expect(got[k]).toBeCloseTo(xv[k]! * Math.exp(xv[k]! * wv[k]!), 5);
  });

  it('gives zeros for a trainable the loss does not depend on, and names gradients /grad/<value>', async () => {
    const { g, b } = base();
    g.initializers.set('u', floatTensor('u', [4], [1, 2, 3, 4]));
    const h = b.op('Mul', ['x', 'w'], {}, 'layer/Mul');
    const loss = b.op('ReduceSum', [b.op('Sigmoid', [h])], { keepdims: 0 });
    g.outputs = [{ name: loss }];
    const shapes = await probeShapesWith(g, xFeed);
    const grads = buildGradients({ graph: g, loss, wrt: ['w', 'u'], shapes });
    expect(grads.get('u')).toBe('/grad/u');
    expect(g.nodes.some((n) => n.outputs.includes(`/grad/${h.replace(/^\//, '')}`))).toBe(true);
    expect(g.initializers.has(`/grad/${loss}`)).toBe(true);
    const out = await runGraph(g, xFeed, 17, ['/grad/u', '/grad/w']);
    expect(Array.from(out['/grad/u']!.data as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(out['/grad/u']!.dims).toEqual([4]);
  });

  it('registry lists the project ops', () => {
    for (const op of ['Conv', 'BatchNormalization', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Gemm', 'MatMul', 'Relu', 'Slice', 'GatherElements'])
      expect(hasGradientRule(op)).toBe(true);
    expect(hasGradientRule('Atan')).toBe(false);
    expect(hasGradientRule('toString')).toBe(false);
    expect(Object.keys(gradientRules).length).toBeGreaterThanOrEqual(45);
  });
});

describe('composite: LayerNorm-like chain + softmax cross-entropy with int64 labels', () => {
  const labels = new BigInt64Array([2n, 0n, 4n, 1n]);
  /** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta. */
  const layerNorm = (b: GraphBuilder, x: string, gamma: string, beta: string, usePow: boolean) => {
    const mean = b.op('ReduceMean', [x], { axes: [-1], keepdims: 1 });
    const d = b.op('Sub', [x, mean]);
    const sq = usePow ? b.op('Pow', [d, b.constFloat([2])]) : b.op('Mul', [d, d]);
    const variance = b.op('ReduceMean', [sq], { axes: [-1], keepdims: 1 });
    const std = b.op('Sqrt', [b.op('Add', [variance, b.constFloat([1e-5])])]);
    return b.op('Add', [b.op('Mul', [b.op('Div', [d, std]), gamma]), beta]);
  };

  for (const usePow of [true, false])
    it(`LogSoftmax + GatherElements cross-entropy (${usePow ? 'Pow' : 'Mul'} variance)`, async () => {
      const r = await checkGradients({
        ...tol,
        inputs: {
          x: { dims: [4, 5], trainable: true },
          gamma: { dims: [5], data: randomFloats(5, 9, 0.5, 1.5), trainable: true },
          beta: { dims: [5], trainable: true },
          labels: { dims: [4], data: labels, dtype: 'int64', feed: true },
        },
        build: (b, i) => {
          const logits = layerNorm(b, i.x!, i.gamma!, i.beta!, usePow);
          const logp = b.op('LogSoftmax', [logits], { axis: 1 });
          const picked = b.op('GatherElements', [logp, b.op('Unsqueeze', [i.labels!, b.constInt64([1])])], { axis: 1 });
          return b.op('Neg', [b.op('ReduceMean', [picked], { keepdims: 0 })]);
        },
      });
      expect(Object.keys(r.analytic).sort()).toEqual(['beta', 'gamma', 'x']);
    });

  it('ReduceLogSumExp − Gather-picked logit cross-entropy, opset 18', async () => {
    await checkGradients({
      ...tol,
      opset: 18,
      inputs: {
        x: { dims: [4, 5], trainable: true },
        gamma: { dims: [5], data: randomFloats(5, 9, 0.5, 1.5), trainable: true },
        beta: { dims: [5], trainable: true },
        labels: { dims: [4], data: labels, dtype: 'int64' },
      },
      build: (b, i) => {
        const mean = b.op('ReduceMean', [i.x!, b.constInt64([-1])], { keepdims: 1 });
        const d = b.op('Sub', [i.x!, mean]);
        const variance = b.op('ReduceMean', [b.op('Mul', [d, d]), b.constInt64([-1])], { keepdims: 1 });
        const std = b.op('Sqrt', [b.op('Add', [variance, b.constFloat([1e-5])])]);
        const logits = b.op('Add', [b.op('Mul', [b.op('Div', [d, std]), i.gamma!]), i.beta!]);
        const lse = b.op('ReduceLogSumExp', [logits, b.constInt64([1])], { keepdims: 0 });
        // Flat Gather of logits[n, label[n]] at n*C + label[n].
        const flatIdx = b.op('Add', [b.constInt64([0, 5, 10, 15]), i.labels!]);
        const picked = b.op('Gather', [b.op('Reshape', [logits, b.constInt64([-1])]), flatIdx], { axis: 0 });
        return b.op('ReduceMean', [b.op('Sub', [lse, picked]), b.constInt64([0])], { keepdims: 0 });
      },
    });
  });

  it('Softmax probabilities with a scaled temperature', async () => {
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [3, 4], trainable: true }, t: { dims: [], data: new Float32Array([1.7]), trainable: true } },
      build: (b, i) => b.op('Softmax', [b.op('Div', [i.x!, i.t!])], { axis: -1 }),
    });
  });
});

describe('more builder cases', () => {
  it('Dropout in training mode: dx = dy * mask / (1 - ratio), checked against the mask of the same run', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: [4, 8] } });
    g.initializers.set('w', floatTensor('w', [4, 8], randomFloats(32, 5)));
    const b = new GraphBuilder(g);
    const h = b.op('Mul', ['x', 'w']);
    const tm = b.initializer({ name: 'training', dataType: 9, dims: [], raw: new Uint8Array([1]) });
    const [y, mask] = b.node('Dropout', [h, b.constFloat([0.25]), tm], {}, { outputs: 2 }) as [string, string];
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    g.outputs = [{ name: loss }];
    const feeds = { x: { dims: [4, 8], data: randomFloats(32, 6) } };
    const shapes = await probeShapesWith(g, feeds);
    const grads = buildGradients({ graph: g, loss, wrt: ['w'], shapes });
    const out = await runGraph(g, feeds, 17, [grads.get('w')!, mask]);
    const gw = out[grads.get('w')!]!.data as Float32Array;
    const m = out[mask]!.data as Uint8Array;
    const xv = feeds.x.data;
    let kept = 0;
    for (let k = 0; k < 32; k++) {
      kept += m[k]!;
      expect(gw[k]).toBeCloseTo((m[k]! ? xv[k]! / 0.75 : 0), 5);
    }
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(32);
  });

  it('a rule refusing a variant (Pad reflect) reports the block', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: [2, 3] } });
    g.initializers.set('w', floatTensor('w', [2, 3], randomFloats(6, 5)));
    const b = new GraphBuilder(g);
    const p = b.op('Pad', [b.op('Mul', ['x', 'w']), b.constInt64([0, 1, 0, 1])], { mode: 'reflect' }, 'stem/Pad');
    const loss = b.op('ReduceSum', [p], { keepdims: 0 });
    g.outputs = [{ name: loss }];
    const shapes = await probeShapesWith(g, { x: { dims: [2, 3], data: randomFloats(6, 7) } });
    expect(() => buildGradients({ graph: g, loss, wrt: ['w'], shapes, block: 'stem' })).toThrow(
      /no gradient rule for op Pad\(mode=reflect\) \(node 'stem\/Pad', in block stem\).*--freeze stem/,
    );
  });

  it('broadcasting reductions at opset 11 (ReduceSum axes as attribute)', async () => {
    for (const op of ['Mul', 'Sub'])
      await checkGradients({
        ...tol,
        opset: 11,
        inputs: { a: { dims: [2, 3, 4], trainable: true }, b: { dims: [3, 1], trainable: true } },
        build: (b, i) => b.op(op, [i.a!, i.b!]),
      });
  });
});

describe('trainables that are node outputs', () => {
  it('stops at a wrt value produced from a graph input (params unpacked by Slice/Reshape, or an op without a rule)', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'params', type: { kind: 'tensor', elemType: 1, shape: [12] } });
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: [2, 3] } });
    const b = new GraphBuilder(g);
    const w = b.node('Reshape', [b.op('Slice', ['params', b.constInt64([0]), b.constInt64([6])]), b.constInt64([2, 3])], {}, { outputs: ['w'] })[0]!;
    const u = b.node('Atan', [b.op('Slice', ['params', b.constInt64([6]), b.constInt64([12])])], {}, { outputs: ['u'] })[0]!;
    const loss = b.op('ReduceSum', [b.op('Mul', [b.op('Mul', ['x', w]), b.op('Reshape', [u, b.constInt64([2, 3])])])], { keepdims: 0 });
    g.outputs = [{ name: loss }];
    const feeds = { params: { dims: [12], data: randomFloats(12, 1) }, x: { dims: [2, 3], data: randomFloats(6, 2) } };
    const shapes = await probeShapesWith(g, feeds);
    const grads = buildGradients({ graph: g, loss, wrt: ['w', 'u'], shapes });
    const out = await runGraph(g, feeds, 17, [grads.get('w')!, grads.get('u')!]);
    const pv = feeds.params.data;
    const xv = feeds.x.data;
    const gw = out[grads.get('w')!]!.data as Float32Array;
    const gu = out[grads.get('u')!]!.data as Float32Array;
    for (let k = 0; k < 6; k++) {
      expect(gw[k]).toBeCloseTo(xv[k]! * Math.atan(pv[k + 6]!), 5);
      expect(gu[k]).toBeCloseTo(xv[k]! * pv[k]!, 5);
    }
  });
});

describe('sub-graphs', () => {
  it('an If node reading a trainable-dependent value from its branches throws NoGradientRuleError', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: [2, 3] } });
    g.initializers.set('w', floatTensor('w', [2, 3], randomFloats(6, 5)));
    const b = new GraphBuilder(g);
    const h = b.op('Mul', ['x', 'w']);
    const branch = (op: string) => {
      const sg = new Graph();
      sg.name = op;
      const sb = new GraphBuilder(sg);
      sg.outputs = [{ name: sb.op(op, [h]) }];
      return sg;
    };
    const cond = b.initializer({ name: 'cond', dataType: 9, dims: [], raw: new Uint8Array([1]) });
    const y = b.op('If', [cond], { then_branch: branch('Exp'), else_branch: branch('Neg') }, 'branchy');
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    const shapes = new Map([
      ['x', { dims: [2, 3], elemType: 1 }], ['w', { dims: [2, 3], elemType: 1 }], [h, { dims: [2, 3], elemType: 1 }],
      [y, { dims: [2, 3], elemType: 1 }], [loss, { dims: [], elemType: 1 }],
    ]);
    expect(() => buildGradients({ graph: g, loss, wrt: ['w'], shapes, block: 'b1' })).toThrow(NoGradientRuleError);
  });
});
