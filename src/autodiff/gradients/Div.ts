import { reduceToShape } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = a / b (numpy broadcasting): da = dy/b, db = -dy*y/b, each summed back to its shape. */
export const Div: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return [undefined, undefined];
  const [a, c] = node.inputs as [string, string];
  const y = node.outputs[0]!;
  const ys = ctx.shape(y);
  const da = ctx.needsGrad(0) ? reduceToShape(b, b.op('Div', [dy, c]), ys, ctx.shape(a), opset) : undefined;
  const db = ctx.needsGrad(1)
    ? b.op('Neg', [reduceToShape(b, b.op('Div', [b.op('Mul', [dy, y]), c]), ys, ctx.shape(c), opset)])
    : undefined;
  return [da, db];
};
