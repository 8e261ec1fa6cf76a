import { reduceToShape, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = cond ? X : Y (broadcasting): dX = dy where cond, dY = dy elsewhere, each summed back to its shape. */
export const Where: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (!dy) return out;
  const [cond, X, Y] = node.inputs as [string, string, string];
  const ys = ctx.shape(node.outputs[0]!);
  const zero = scalar(b, 0);
  if (ctx.needsGrad(1)) out[1] = reduceToShape(b, b.op('Where', [cond, dy, zero]), ys, ctx.shape(X), opset);
  if (ctx.needsGrad(2)) out[2] = reduceToShape(b, b.op('Where', [cond, zero, dy]), ys, ctx.shape(Y), opset);
  return out;
};
