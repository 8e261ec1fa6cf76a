/**
 * Gradient of Gemm: Y = alpha·A'·B' + beta·C, A' = transA ? Aᵀ : A, B' likewise;
 * C broadcasts unidirectionally to [M, N].
 *   dA' = alpha·dY·B'ᵀ,  dB' = alpha·A'ᵀ·dY,  dC = beta·(dY summed to C's shape)
 * Each product is a single Gemm with the right trans flags (no Transpose nodes).
 */
import { attrFloat, attrInt, f } from '../../ir/attrs.js';
import type { GradRule } from '../types.js';
import { reduceToShape } from '../helpers.js';

export const Gemm: GradRule = (ctx) => {
  const { node, b } = ctx;
  const res: (string | undefined)[] = node.inputs.map(() => undefined);
  const dy = ctx.gradOutput(0);
  if (!dy) return res;
  const [A, B, C] = node.inputs as [string, string, string | undefined];
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const tA = attrInt(node, 'transA', 0);
  const tB = attrInt(node, 'transB', 0);
  const al = alpha === 1 ? undefined : f(alpha);
  if (ctx.needsGrad(0))
    res[0] = tA
      ? b.op('Gemm', [B, dy], { alpha: al, transA: tB, transB: 1 }) // dA = alpha·B'·dYᵀ
      : b.op('Gemm', [dy, B], { alpha: al, transB: tB ? 0 : 1 }); // dA = alpha·dY·B'ᵀ
  if (ctx.needsGrad(1))
    res[1] = tB
      ? b.op('Gemm', [dy, A], { alpha: al, transA: 1, transB: tA }) // dB = alpha·dYᵀ·A'
      : b.op('Gemm', [A, dy], { alpha: al, transA: tA ? 0 : 1 }); // dB = alpha·A'ᵀ·dY
  if (C && ctx.needsGrad(2)) {
    const s = reduceToShape(b, dy, ctx.shape(node.outputs[0]!), ctx.shape(C), ctx.opset);
    res[2] = beta === 1 ? s : b.op('Mul', [s, b.constFloat([beta], [], 'scalar')]);
  }
  return res;
};
