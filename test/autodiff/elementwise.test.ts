import { describe, expect, it } from 'vitest';
import { f } from '../../src/ir/attrs.js';
import { checkGradients, randomFloats } from './harness.js';

/** Values in [lo, hi) with |v| kept >= gap away from the given kinks. */
function awayFrom(n: number, seed: number, kinks: number[], lo = -2, hi = 2, gap = 0.05): Float32Array {
  const v = randomFloats(n, seed, lo, hi);
  for (let i = 0; i < n; i++) for (const k of kinks) if (Math.abs(v[i]! - k) < gap) v[i] = k + (v[i]! >= k ? gap : -gap);
  return v;
}

// Tolerances: eps 1e-3 (float32 forward, float64 loss accumulation), |a-n| <= 1e-3 + 1e-2|n| unless stated.
const tol = { eps: 1e-3, rtol: 1e-2, atol: 1e-3 };

describe('element-wise gradient rules (central differences)', () => {
  for (const activationMask of ['output', 'input'] as const) {
    it(`Relu, away from the kink (mask read from the ${activationMask})`, async () => {
      await checkGradients({ ...tol, formulations: { activationMask }, inputs: { x: { dims: [2, 3, 4], data: awayFrom(24, 1, [0]), trainable: true } }, build: (b, i) => b.op('Relu', [i.x!]) });
    });

    it(`Clip with min/max inputs (opset 17) and attributes (opset 10) (mask read from the ${activationMask})`, async () => {
      const data = awayFrom(24, 2, [-0.5, 0.7]);
      const formulations = { activationMask };
      await checkGradients({
        ...tol,
        formulations,
        inputs: { x: { dims: [4, 6], data, trainable: true } },
        build: (b, i) => b.op('Clip', [i.x!, b.constFloat([-0.5]), b.constFloat([0.7])]),
      });
      await checkGradients({
        ...tol,
        formulations,
        opset: 10,
        inputs: { x: { dims: [4, 6], data, trainable: true } },
        build: (b, i) => b.op('Clip', [i.x!], { min: -0.5, max: 0.7 }),
      });
      // Only a max, only a min.
      for (const bounds of [['', 0.7], [-0.5, '']] as const)
        await checkGradients({
          ...tol,
          formulations,
          inputs: { x: { dims: [4, 6], data, trainable: true } },
          build: (b, i) => b.op('Clip', [i.x!, ...bounds.map((v) => (v === '' ? '' : b.constFloat([v])))]),
        });
    });
  }

  it("Conv → Relu: with the mask read from the Relu's output, the Conv's output feeds the Relu alone (fusable)", async () => {
    const consumersOfConv = async (activationMask: 'input' | 'output') => {
      const r = await checkGradients({
        ...tol,
        formulations: { activationMask },
        inputs: { x: { dims: [1, 2, 4, 4], trainable: false }, w: { dims: [3, 2, 3, 3], trainable: true } },
        build: (b, i) => b.op('Relu', [b.op('Conv', [i.x!, i.w!], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]),
      });
      const conv = r.graph.nodes.find((n) => n.opType === 'Conv' && !n.name.startsWith('/grad'))!;
      return r.graph.nodes.filter((n) => n.inputs.includes(conv.outputs[0]!)).map((n) => n.opType);
    };
    expect(await consumersOfConv('output')).toEqual(['Relu']);
    expect((await consumersOfConv('input')).sort()).toEqual(['Greater', 'Relu']);
  });

  it('Clip gradient w.r.t. trainable min and max', async () => {
    await checkGradients({
      ...tol,
      inputs: {
        x: { dims: [4, 6], data: awayFrom(24, 3, [-0.5, 0.7]), trainable: true },
        lo: { dims: [], data: new Float32Array([-0.5]), trainable: true },
        hi: { dims: [], data: new Float32Array([0.7]), trainable: true },
      },
      build: (b, i) => b.op('Clip', [i.x!, i.lo!, i.hi!]),
    });
  });

  it('HardSigmoid (alpha 0.3, beta 0.4) and defaults', async () => {
    // Kinks where 0.3x+0.4 ∈ {0,1}: x = -4/3, 2.
    const data = awayFrom(30, 4, [-4 / 3, 2, -2.5, 2.5], -4, 4);
    await checkGradients({ ...tol, inputs: { x: { dims: [5, 6], data, trainable: true } }, build: (b, i) => b.op('HardSigmoid', [i.x!], { alpha: 0.3, beta: 0.4 }) });
    await checkGradients({ ...tol, inputs: { x: { dims: [5, 6], data, trainable: true } }, build: (b, i) => b.op('HardSigmoid', [i.x!]) });
  });

  it('HardSwish', async () => {
    const data = awayFrom(30, 5, [-3, 3], -5, 5);
    await checkGradients({ ...tol, inputs: { x: { dims: [5, 6], data, trainable: true } }, build: (b, i) => b.op('HardSwish', [i.x!]) });
  });

  it('Sigmoid, Tanh, Exp, Neg, Identity', async () => {
    for (const op of ['Sigmoid', 'Tanh', 'Exp', 'Neg', 'Identity'])
      await checkGradients({ ...tol, inputs: { x: { dims: [3, 5], trainable: true } }, build: (b, i) => b.op(op, [i.x!]) });
  });

  it('Sqrt and Log (positive inputs)', async () => {
    const data = randomFloats(15, 6, 0.5, 2);
    for (const op of ['Sqrt', 'Log'])
      await checkGradients({ ...tol, inputs: { x: { dims: [3, 5], data, trainable: true } }, build: (b, i) => b.op(op, [i.x!]) });
  });

  it('Pow: constant exponents 2, 3, 0.5, and a trainable exponent', async () => {
    const data = randomFloats(12, 7, 0.5, 2);
    for (const e of [2, 3, 0.5, 1])
      await checkGradients({ ...tol, inputs: { x: { dims: [3, 4], data, trainable: true } }, build: (b, i) => b.op('Pow', [i.x!, b.constFloat([e])]) });
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [3, 4], data, trainable: true }, e: { dims: [4], data: new Float32Array([1.5, 2, -0.5, 3]), trainable: true } },
      build: (b, i) => b.op('Pow', [i.x!, i.e!]),
    });
    // Exponent not trainable but computed (not a constant).
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [3, 4], data, trainable: true }, e: { dims: [1], data: new Float32Array([1.5]), feed: true } },
      build: (b, i) => b.op('Pow', [i.x!, i.e!]),
    });
  });

  it('Cast float → float (identity) and Dropout in inference / training mode', async () => {
    await checkGradients({ ...tol, inputs: { x: { dims: [3, 4], trainable: true } }, build: (b, i) => b.op('Cast', [i.x!], { to: 1 }) });
    await checkGradients({ ...tol, inputs: { x: { dims: [3, 4], trainable: true } }, build: (b, i) => b.op('Dropout', [i.x!]) });
    await checkGradients({ ...tol, opset: 10, inputs: { x: { dims: [3, 4], trainable: true } }, build: (b, i) => b.op('Dropout', [i.x!], { ratio: f(0.5) }) });
    // Training mode with ratio 0 is the identity too (and deterministic, so checkable).
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [3, 4], trainable: true } },
      build: (b, i) => b.node('Dropout', [i.x!, b.constFloat([0]), b.initializer({ name: 'tm', dataType: 9, dims: [], raw: new Uint8Array([1]) })], {}, { outputs: 2 })[0]!,
    });
  });

  it('Reciprocal, Abs, LeakyRelu, Softplus, Erf', async () => {
    const awayZero = awayFrom(15, 8, [0], -2, 2, 0.2);
    for (const [op, attrs] of [['Reciprocal', {}], ['Abs', {}], ['LeakyRelu', { alpha: 0.1 }], ['LeakyRelu', {}], ['Softplus', {}], ['Erf', {}]] as const)
      await checkGradients({ ...tol, inputs: { x: { dims: [3, 5], data: awayZero, trainable: true } }, build: (b, i) => b.op(op, [i.x!], attrs) });
  });

  it('Mean, Max, Min (variadic, broadcasting, no ties)', async () => {
    for (const op of ['Mean', 'Max', 'Min'])
      await checkGradients({
        ...tol,
        inputs: { a: { dims: [2, 3], trainable: true }, b: { dims: [3], data: new Float32Array([-0.3, 0.1, 0.45]), trainable: true }, c: { dims: [2, 1], data: new Float32Array([0.2, -0.6]), trainable: true } },
        build: (b, i) => b.op(op, [i.a!, i.b!, i.c!]),
      });
  });
});
