import { attrInt } from '../../ir/attrs.js';
import { ints, normAxis, padZeros, product, reduceSum, reshape, transpose, zeros } from '../helpers.js';
import type { GradContext, GradRule } from '../types.js';

/**
 * Adds `updates` into zeros of `dataShape` at `indices` along `axis`
 * (ScatterElements semantics, repeated indices accumulate): ScatterElements
 * with reduction='add' from opset 16; a one-hot MatMul before.
 * `indices` and `updates` have the same shape, equal to `dataShape` except on `axis`.
 */
export function scatterAdd(ctx: GradContext, dataShape: number[], indices: string, updates: string, updShape: number[], axis: number): string {
  const { b, opset } = ctx;
  if (opset >= 16) return b.op('ScatterElements', [zeros(b, dataShape), indices, updates], { axis, reduction: 'add' });
  // One-hot along a new last axis: onehot[..., k] = (idx == k) (negative indices wrapped).
  const d = dataShape[axis]!;
  const rank = dataShape.length;
  const depth = b.constInt64([d], [], 'depth');
  const idx64 = b.op('Cast', [indices], { to: 7 });
  const wrapped = b.op('Where', [b.op('Less', [idx64, b.constInt64([0], [], 'zero')]), b.op('Add', [idx64, depth]), idx64]);
  const range = b.op('Range', [b.constInt64([0], [], 'zero'), depth, b.constInt64([1], [], 'one')]);
  const oneHot = b.op('Cast', [b.op('Equal', [reshape(b, wrapped, [...updShape, 1]), range])], { to: 1 });
  const prod = b.op('Mul', [oneHot, reshape(b, updates, [...updShape, 1])]);
  const summed = reduceSum(b, prod, [axis], true, opset);
  // [.., 1 (axis), .., d] → move d into the axis slot.
  const perm = Array.from({ length: rank + 1 }, (_, i) => i);
  perm[axis] = rank;
  perm[rank] = axis;
  const moved = transpose(b, summed, perm);
  const withD = updShape.map((s, i) => (i === axis ? d : s));
  const r = reshape(b, moved, withD);
  const padEnd = dataShape.map((s, i) => s - withD[i]!);
  return padZeros(b, r, dataShape.map(() => 0), padEnd, opset);
}

/** y = take(x, indices, axis): dx = dy added into zeros at the gathered positions. */
export const Gather: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node } = ctx;
  if (!dy || !ctx.needsGrad(0)) return [undefined, undefined];
  const [x, indices] = node.inputs as [string, string];
  const xs = ctx.shape(x);
  const r = xs.length;
  const a = normAxis(attrInt(node, 'axis', 0), r);
  const n = product(ctx.shape(indices));
  const flat = [...xs.slice(0, a), n, ...xs.slice(a + 1)];
  const idx = reshape(b, indices, flat.map((_, i) => (i === a ? n : 1)));
  const idxFull = b.op('Expand', [idx, ints(b, flat, 'shape')]);
  return [scatterAdd(ctx, xs, idxFull, reshape(b, dy, flat), flat, a), undefined];
};
