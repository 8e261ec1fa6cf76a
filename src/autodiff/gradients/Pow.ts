import { constScalar, isFloatType, reduceToShape, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/**
 * y = a ^ e (broadcasting): da = dy * e * a^(e-1) (a constant exponent is
 * folded: e=2 → 2a, e=1 → 1); de = dy * y * ln(a), needed only for a trainable
 * exponent (real-valued where a > 0).
 */
export const Pow: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return [undefined, undefined];
  const [a, e] = node.inputs as [string, string];
  const y = node.outputs[0]!;
  const ys = ctx.shape(y);
  let da: string | undefined;
  if (ctx.needsGrad(0)) {
    const c = constScalar(ctx, e);
    let local: string;
    if (c !== undefined) {
      if (c === 0) local = scalar(b, 0);
      else if (c === 1) local = scalar(b, 1);
      else if (c === 2) local = b.op('Mul', [a, scalar(b, 2)]);
      else local = b.op('Mul', [b.op('Pow', [a, scalar(b, c - 1)]), scalar(b, c)]);
    } else {
      const ef = isFloatType(ctx.elemType(e)) && ctx.elemType(e) === ctx.elemType(a) ? e : b.op('Cast', [e], { to: ctx.elemType(a) });
      local = b.op('Mul', [b.op('Pow', [a, b.op('Sub', [ef, scalar(b, 1)])]), ef]);
    }
    da = reduceToShape(b, b.op('Mul', [dy, local]), ys, ctx.shape(a), opset);
  }
  let de: string | undefined;
  if (ctx.needsGrad(1)) de = reduceToShape(b, b.op('Mul', [b.op('Mul', [dy, y]), b.op('Log', [a])]), ys, ctx.shape(e), opset);
  return [da, de];
};
