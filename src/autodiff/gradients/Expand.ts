import { reduceToShape } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = broadcast(x, shape): dx = dy summed back over the broadcast axes. */
export const Expand: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined, undefined];
  const { node } = ctx;
  return [reduceToShape(ctx.b, dy, ctx.shape(node.outputs[0]!), ctx.shape(node.inputs[0]!), ctx.opset), undefined];
};
