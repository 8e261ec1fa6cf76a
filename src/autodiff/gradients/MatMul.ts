/**
 * Gradient of MatMul (numpy semantics: batched broadcasting, 1-D operands).
 * 1-D operands are lifted (A: [K] → [1, K], B: [K] → [K, 1]) and dY reshaped
 * to match; then dA = dY·Bᵀ and dB = Aᵀ·dY, summed over broadcast batch axes.
 * Common case A [..., M, K] · B [K, N] (a linear layer over a batch): dB is one
 * Gemm over the flattened batch (Aᵀ·dY with transA) instead of a batched
 * MatMul followed by a reduction.
 */
import type { GradRule } from '../types.js';
import { product, reduceToShape, reshape, transpose } from '../helpers.js';

const swapLast = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];

export const MatMul: GradRule = (ctx) => {
  const { node, b } = ctx;
  const res: (string | undefined)[] = [undefined, undefined];
  const dy = ctx.gradOutput(0);
  if (!dy) return res;
  const [A, B] = node.inputs as [string, string];
  const as = ctx.shape(A);
  const bs = ctx.shape(B);
  const a2 = as.length === 1 ? [1, as[0]!] : as;
  const b2 = bs.length === 1 ? [bs[0]!, 1] : bs;
  const batchRank = Math.max(a2.length, b2.length) - 2;
  const bat = (s: number[]) => [...Array(batchRank - (s.length - 2)).fill(1), ...s.slice(0, -2)];
  const ba = bat(a2);
  const bb = bat(b2);
  const batch = ba.map((d, i) => Math.max(d, bb[i]!));
  const M = a2[a2.length - 2]!;
  const K = a2[a2.length - 1]!;
  const N = b2[b2.length - 1]!;
  const ys = ctx.shape(node.outputs[0]!);
  const y2 = [...batch, M, N];
  const dy2 = ys.length === y2.length && ys.every((d, i) => d === y2[i]) ? dy : reshape(b, dy, y2);
  const A2 = a2 === as ? A : reshape(b, A, a2);
  const B2 = b2 === bs ? B : reshape(b, B, b2);
  if (ctx.needsGrad(0)) {
    let g: string;
    if (b2.length === 2) g = b.op('MatMul', [dy2, transpose(b, B2, [1, 0])]);
    else g = b.op('MatMul', [dy2, transpose(b, B2, swapLast(b2.length))]);
    const full = [...batch, M, K];
    g = reduceToShape(b, g, full, a2, ctx.opset);
    res[0] = a2 === as ? g : reshape(b, g, as);
  }
  if (ctx.needsGrad(1)) {
    let g: string;
    if (b2.length === 2 && batchRank > 0 && ba.every((d, i) => d === batch[i])) {
      // Linear layer: dB = Σ_batch Aᵀ·dY = Gemm over the flattened batch.
      const P = product(batch) * M;
      g = b.op('Gemm', [reshape(b, A2, [P, K]), reshape(b, dy2, [P, N])], { transA: 1 });
    } else {
      g = b.op('MatMul', [transpose(b, A2, swapLast(a2.length)), dy2]);
      g = reduceToShape(b, g, [...batch, K, N], b2, ctx.opset);
    }
    res[1] = b2 === bs ? g : reshape(b, g, bs);
  }
  return res;
};
