import { attrInt } from '../../ir/attrs.js';
import { normAxis, reduceSum } from '../helpers.js';
import type { GradContext, GradRule } from '../types.js';

/** Axes a (Log)Softmax normalises over: one axis from opset 13, all trailing axes from `axis` before. */
export function softmaxAxes(ctx: GradContext): number[] {
  const rank = ctx.shape(ctx.node.inputs[0]!).length;
  const axis = normAxis(attrInt(ctx.node, 'axis', ctx.opset >= 13 ? -1 : 1), rank);
  return ctx.opset >= 13 ? [axis] : Array.from({ length: rank - axis }, (_, i) => axis + i);
}

/** y = softmax(x): dx = y * (dy - sum(dy * y)) over the softmax axes. */
export const Softmax: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node, opset } = ctx;
  const y = node.outputs[0]!;
  const s = reduceSum(b, b.op('Mul', [dy, y]), softmaxAxes(ctx), true, opset);
  return [b.op('Mul', [y, b.op('Sub', [dy, s])])];
};
