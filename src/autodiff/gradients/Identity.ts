import type { GradRule } from '../types.js';

/** y = x: dx = dy (the same value; no op). */
export const Identity: GradRule = (ctx) => [ctx.needsGrad(0) ? ctx.gradOutput(0) : undefined];
