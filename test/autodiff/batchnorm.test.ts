/**
 * BatchNormalization gradient rule (training and inference mode) against
 * central differences, and the running-statistics conventions.
 * Tolerance: eps 1e-2, |analytic − numeric| ≤ 2e-3 + 1e-2·|numeric| (BN is
 * nonlinear in training mode; central differences err by O(eps²)).
 */
import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { f } from '../../src/ir/attrs.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { bnRunningStatUpdate } from '../../src/autodiff/gradients/BatchNormalization.js';
import { checkGradients, randomFloats, runGraph } from './harness.js';

const tol = { eps: 1e-2, rtol: 1e-2, atol: 2e-3 };
const C = 3;

function bnInputs(xDims: number[], trainStats = false) {
  return {
    x: { dims: xDims, trainable: true },
    scale: { dims: [C], data: randomFloats(C, 5, 0.5, 1.5), trainable: true },
    bias: { dims: [C], trainable: true },
    mean: { dims: [C], data: randomFloats(C, 6, -0.2, 0.2), trainable: trainStats },
    var: { dims: [C], data: randomFloats(C, 7, 0.5, 1.5), trainable: trainStats },
  };
}

describe('BatchNormalization gradient (central differences)', () => {
  for (const xDims of [[4, C, 3, 3], [2, C, 5, 4], [6, C]])
    it(`training mode (batch statistics), x [${xDims}]`, async () => {
      await checkGradients({
        ...tol,
        inputs: bnInputs(xDims),
        build: (b, i) =>
          b.node('BatchNormalization', [i.x!, i.scale!, i.bias!, i.mean!, i.var!], { epsilon: f(1e-5), momentum: f(0.9), training_mode: 1 }, { outputs: 3 })[0]!,
      });
    });
  it('inference mode (fixed statistics), incl. mean/var gradients', async () => {
    await checkGradients({
      ...tol,
      inputs: bnInputs([2, C, 4, 4], true),
      build: (b, i) => b.op('BatchNormalization', [i.x!, i.scale!, i.bias!, i.mean!, i.var!], { epsilon: f(1e-3) }),
    });
  });
});

describe('BatchNormalization running statistics', () => {
  it('bnRunningStatUpdate follows PyTorch (unbiased var); onnxruntime’s own outputs use the biased var', async () => {
    const dims = [4, C, 3, 3];
    const M = 4 * 9;
    const x = randomFloats(dims.reduce((p, d) => p * d, 1), 9, -2, 2);
    const rm = [0.1, -0.2, 0.3];
    const rv = [1.2, 0.8, 1.1];
    const mom = 0.8; // ONNX momentum (PyTorch 0.2)
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: dims } });
    const b = new GraphBuilder(g);
    const s = b.initializer(floatTensor('s', [C], [1, 1, 1]));
    const bb = b.initializer(floatTensor('bb', [C], [0, 0, 0]));
    const m = b.initializer(floatTensor('m', [C], rm));
    const v = b.initializer(floatTensor('v', [C], rv));
    const [, om, ov] = b.node('BatchNormalization', ['x', s, bb, m, v], { momentum: f(mom), training_mode: 1 }, { outputs: 3 });
    const [nm, nv] = bnRunningStatUpdate(b, g.nodes[0]!, dims, 17);
    const out = await runGraph(g, { x: { dims, data: x } }, 17, [om!, ov!, nm, nv]);
    for (let c = 0; c < C; c++) {
      let sum = 0;
      let ss = 0;
      for (let n = 0; n < 4; n++) for (let k = 0; k < 9; k++) sum += x[(n * C + c) * 9 + k]!;
      const mean = sum / M;
      for (let n = 0; n < 4; n++) for (let k = 0; k < 9; k++) ss += (x[(n * C + c) * 9 + k]! - mean) ** 2;
      const expMean = mom * rm[c]! + (1 - mom) * mean;
      const torchVar = mom * rv[c]! + (1 - mom) * (ss / (M - 1));
      const biasedVar = mom * rv[c]! + (1 - mom) * (ss / M);
      expect((out[nm]!.data as Float32Array)[c]).toBeCloseTo(expMean, 5);
      expect((out[nv]!.data as Float32Array)[c]).toBeCloseTo(torchVar, 5);
      expect((out[om!]!.data as Float32Array)[c]).toBeCloseTo(expMean, 5);
      // onnxruntime 1.30 CPU: running_var output uses the biased batch variance.
      expect((out[ov!]!.data as Float32Array)[c]).toBeCloseTo(biasedVar, 5);
    }
  });
});
