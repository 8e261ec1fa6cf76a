import { reshape } from '../helpers.js';
import type { GradRule } from '../types.js';

/**
 * Any op that only rearranges the shape, not the element order (Reshape,
 * Flatten, Squeeze, Unsqueeze): dx = dy reshaped to x's shape. Other inputs
 * (shape, axes) get none.
 */
export const Reshape: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const out: (string | undefined)[] = ctx.node.inputs.map(() => undefined);
  if (dy && ctx.needsGrad(0)) out[0] = reshape(ctx.b, dy, ctx.shape(ctx.node.inputs[0]!));
  return out;
};
