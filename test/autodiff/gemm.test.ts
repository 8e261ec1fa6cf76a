/**
 * Gemm and MatMul gradient rules against central differences. Both are
 * bilinear: eps 0.1 (exact up to rounding), |analytic − numeric| ≤ 1e-3 + 1e-3·|numeric|.
 */
import { describe, it } from 'vitest';
import type { AttrValue } from '../../src/ir/attrs.js';
import { f } from '../../src/ir/attrs.js';
import { checkGradients } from './harness.js';

const tol = { eps: 0.1, rtol: 1e-3, atol: 1e-3 };

const gemmCases: [string, number[], number[], number[] | undefined, Record<string, AttrValue>][] = [
  ['plain, C [N]', [5, 4], [4, 3], [3], {}],
  ['transB (linear layer), alpha/beta, C [N]', [5, 4], [3, 4], [3], { transB: 1, alpha: f(0.7), beta: f(1.3) }],
  ['transA, C [M, 1]', [4, 5], [4, 3], [5, 1], { transA: 1 }],
  ['transA + transB, C [M, N]', [4, 5], [3, 4], [5, 3], { transA: 1, transB: 1, alpha: f(2) }],
  ['C scalar', [2, 3], [3, 4], [], { beta: f(0.5) }],
  ['C [1, N]', [2, 3], [4, 3], [1, 4], { transB: 1 }],
  ['no C', [3, 2], [2, 4], undefined, {}],
];

describe('Gemm gradient (central differences)', () => {
  for (const [name, a, bDims, c, attrs] of gemmCases)
    it(name, async () => {
      const inputs: Record<string, { dims: number[]; trainable: boolean }> = { a: { dims: a, trainable: true }, b: { dims: bDims, trainable: true } };
      if (c) inputs.c = { dims: c, trainable: true };
      await checkGradients({ ...tol, inputs, build: (b, i) => b.op('Gemm', c ? [i.a!, i.b!, i.c!] : [i.a!, i.b!], attrs) });
    });
});

const matmulCases: [string, number[], number[]][] = [
  ['2-D', [3, 4], [4, 5]],
  ['batched, same batch', [2, 3, 4], [2, 4, 5]],
  ['batched with broadcasting [2,1,3,4]·[3,4,5]', [2, 1, 3, 4], [3, 4, 5]],
  ['batched · 2-D weight (linear over a batch)', [2, 3, 4], [4, 5]],
  ['2-D · batched', [3, 4], [2, 4, 5]],
  ['1-D · batched', [4], [2, 4, 5]],
  ['batched · 1-D', [2, 3, 4], [4]],
  ['1-D · 1-D (dot)', [4], [4]],
];

describe('MatMul gradient (central differences)', () => {
  for (const [name, a, bDims] of matmulCases)
    it(name, async () => {
      await checkGradients({ ...tol, inputs: { a: { dims: a, trainable: true }, b: { dims: bDims, trainable: true } }, build: (b, i) => b.op('MatMul', [i.a!, i.b!]) });
    });
});
