import { isFloatType } from '../helpers.js';
import type { GradRule } from '../types.js';

/** Float → float Cast: dx = dy cast back to x's type. Casts from/to integers carry no gradient. */
export const Cast: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { node } = ctx;
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const xt = ctx.elemType(node.inputs[0]!);
  const yt = ctx.elemType(node.outputs[0]!);
  if (!isFloatType(xt) || !isFloatType(yt)) return [undefined];
  return [xt === yt ? dy : ctx.b.op('Cast', [dy], { to: xt })];
};
