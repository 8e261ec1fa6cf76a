import { describe, expect, it } from 'vitest';
import { gradientRules } from '../../src/autodiff/registry.js';
import type { GradRule } from '../../src/autodiff/types.js';
import { checkGradients, randomFloats } from './harness.js';

// eps 1e-3; |analytic - numeric| <= 1e-3 + 1e-2|numeric|.
const tol = { eps: 1e-3, rtol: 1e-2, atol: 1e-3 };

const cases: [string, number[], number[]][] = [
  ['same shape', [2, 3, 4], [2, 3, 4]],
  ['[2,3,4,5] with [3,1,1]', [2, 3, 4, 5], [3, 1, 1]],
  ['[2,3,4,5] with [1]', [2, 3, 4, 5], [1]],
  ['[2,3,4,5] with a scalar', [2, 3, 4, 5], []],
  ['[3,1,5] with [2,1,4,1] (both broadcast)', [3, 1, 5], [2, 1, 4, 1]],
  ['scalar with [2,3]', [], [2, 3]],
];

describe('Add/Sub/Mul/Div with numpy broadcasting (central differences)', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div'])
    for (const [label, da, db] of cases)
      it(`${op}: ${label}`, async () => {
        const nb = db.reduce((p, d) => p * d, 1);
        // Divisors kept in [0.5, 1.5] so 1/b stays smooth.
        const bData = op === 'Div' ? randomFloats(nb, 11, 0.5, 1.5) : undefined;
        const r = await checkGradients({
          ...tol,
          inputs: { a: { dims: da, trainable: true }, b: { dims: db, data: bData, trainable: true } },
          build: (b, i) => b.op(op, [i.a!, i.b!]),
        });
        expect(r.analytic['b']!.length).toBe(nb);
      });
});

describe('the builder', () => {
  it('sums the gradients of a value used twice (x*x) and of several consumers', async () => {
    const r = await checkGradients({
      ...tol,
      inputs: { x: { dims: [2, 3], trainable: true } },
      build: (b, i) => {
        const sq = b.op('Mul', [i.x!, i.x!]);
        const e = b.op('Exp', [i.x!]);
        const s = b.op('Sigmoid', [i.x!]);
        return b.op('Add', [b.op('Add', [sq, e]), s]);
      },
    });
    const sums = r.graph.nodes.filter((n) => n.opType === 'Sum');
    expect(sums.length).toBeGreaterThan(0);
    expect(r.gradNames.get('x')).toBe('/grad/x');
  });

  it('Sum (variadic, broadcasting) and Where w.r.t. X and Y', async () => {
    await checkGradients({
      ...tol,
      inputs: { a: { dims: [2, 3], trainable: true }, b: { dims: [3], trainable: true }, c: { dims: [1, 1], trainable: true } },
      build: (b, i) => b.op('Sum', [i.a!, i.b!, i.c!]),
    });
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [2, 3], trainable: true }, y: { dims: [3], trainable: true }, c: { dims: [2, 3], trainable: false } },
      build: (b, i) => b.op('Where', [b.op('Greater', [i.c!, b.constFloat([0])]), i.x!, i.y!]),
    });
  });

  it('a deliberately wrong rule is caught by the checker', async () => {
    const wrongExp: GradRule = (ctx) => [ctx.gradOutput(0)]; // forgets the factor exp(x)
    await expect(
      checkGradients({ ...tol, rules: { ...gradientRules, Exp: wrongExp }, inputs: { x: { dims: [4], trainable: true } }, build: (b, i) => b.op('Exp', [i.x!]) }),
    ).rejects.toThrow(/gradient check failed.*\n\s+x\[0\]: analytic/);
  });
});
