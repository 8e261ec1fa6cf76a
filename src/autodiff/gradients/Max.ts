import { reduceToShape, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/**
 * Element-wise Max/Min (variadic, broadcasting): dy goes to the inputs equal
 * to the result (each tied input receives it), summed back to their shapes.
 */
export const Max: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return node.inputs.map(() => undefined);
  const y = node.outputs[0]!;
  const ys = ctx.shape(y);
  return node.inputs.map((v, i) =>
    ctx.needsGrad(i) ? reduceToShape(b, b.op('Where', [b.op('Equal', [v, y]), dy, scalar(b, 0)]), ys, ctx.shape(v), opset) : undefined,
  );
};
