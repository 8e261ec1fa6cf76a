import { activationMaskSource, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/**
 * y = max(x, 0): dx = dy where x > 0, else 0. x > 0 exactly where y > 0, so the mask can be read
 * from either; from y (GradFormulations.activationMask) lets a Conv before the Relu
 * fuse with it, since the Conv's output then feeds the Relu alone.
 */
export const Relu: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b } = ctx;
  const pos = b.op('Greater', [activationMaskSource(ctx), scalar(b, 0)]);
  return [b.op('Where', [pos, dy, scalar(b, 0)])];
};
