/**
 * Per-target rewrites (src/autodiff/lowering.ts), run on the CPU EP: a graph lowered for WebGPU
 * computes what the original computes (BatchNormalization in training mode, LogSoftmax, Sum),
 * holds none of the replaced nodes, and a 'cpu' target leaves the graph alone.
 */
import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { DataType } from '../../src/ir/types.js';
import { lowerForTarget, loweringsFor } from '../../src/autodiff/lowering.js';
import { randomFloats, runGraph } from './harness.js';

const X = [4, 3, 5, 5];

/** y = Sum(BN_train(x), LogSoftmax(x, axis 1), x) with BN's unused running-stat outputs, as the train step emits it. */
function build(): { g: Graph; y: string } {
  const g = new Graph();
  g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: X } });
  g.initializers.set('scale', floatTensor('scale', [3], [0.5, 1.5, -2]));
  g.initializers.set('bias', floatTensor('bias', [3], [0.1, -0.3, 2]));
  g.initializers.set('mean', floatTensor('mean', [3], [0, 0, 0]));
  g.initializers.set('var', floatTensor('var', [3], [1, 1, 1]));
  const b = new GraphBuilder(g);
  const [bn] = b.node('BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], { training_mode: 1, epsilon: 1e-3 }, { outputs: 3 });
  const lsm = b.op('LogSoftmax', ['x'], { axis: 1 });
  const y = b.op('Sum', [bn!, lsm, 'x']);
  g.outputs = [{ name: y }];
  return { g, y };
}

describe('lowering for a target', () => {
  it('WebGPU: BN training mode, LogSoftmax and Sum replaced by ops the EP has, same values', async () => {
    // Large values: LogSoftmax's rewrite must not overflow exp().
    const x = { dims: X, data: randomFloats(X.reduce((a, d) => a * d, 1), 5, -60, 60) };
    const { g, y } = build();
    const want = (await runGraph(g, { x }))[y]!.data as Float32Array;
    const lowered = build();
    expect(lowerForTarget(lowered.g, 'webgpu', 17, (v) => (v === 'x' ? 4 : undefined))).toBe(3);
    lowered.g.topoSort();
    expect(lowered.g.nodes.filter((n) => ['BatchNormalization', 'LogSoftmax', 'Sum'].includes(n.opType))).toEqual([]);
    // Nothing reads the running-statistics inputs any more: they are gone.
    expect([...lowered.g.initializers.keys()].sort()).not.toContain('mean');
    const got = (await runGraph(lowered.g, { x }))[lowered.y]!.data as Float32Array;
    let err = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      err = Math.max(err, Math.abs(got[i]! - want[i]!));
      scale = Math.max(scale, Math.abs(want[i]!));
    }
    expect(Number.isFinite(err)).toBe(true);
    expect(err / scale).toBeLessThan(1e-5);
  });
  it('CUDA rewrites BN training mode only; CPU nothing', () => {
    const cuda = build();
    expect(lowerForTarget(cuda.g, 'cuda', 17, () => 4)).toBe(1);
    expect(cuda.g.nodes.map((n) => n.opType)).toContain('LogSoftmax');
    const cpu = build();
    const before = JSON.stringify(cpu.g.nodes);
    expect(lowerForTarget(cpu.g, 'cpu', 17, () => 4)).toBe(0);
    expect(JSON.stringify(cpu.g.nodes)).toBe(before);
    expect(loweringsFor('cpu')).toEqual([]);
    expect(loweringsFor('webgpu')).toHaveLength(3);
  });
  it('keeps a BN node whose running-statistics outputs are read, and says when a rank is unknown', () => {
    const kept = build();
    const bn = kept.g.nodes.find((n) => n.opType === 'BatchNormalization')!;
    kept.g.outputs.push({ name: bn.outputs[1]! });
    lowerForTarget(kept.g, 'webgpu', 17, () => 4);
    expect(kept.g.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(1);
    expect(() => lowerForTarget(build().g, 'webgpu', 17, () => undefined)).toThrow(/lowering BatchNormalization '.*': the rank of its input 'x' is unknown/);
  });
});
