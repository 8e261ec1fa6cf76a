import { attrInt } from '../../ir/attrs.js';
import { ints, normAxis } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = concat(x_i, axis): dx_i = the matching piece of dy (one Split). */
export const Concat: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  const n = node.inputs.length;
  if (!dy || !node.inputs.some((_, i) => ctx.needsGrad(i))) return node.inputs.map(() => undefined);
  const rank = ctx.shape(node.outputs[0]!).length;
  const axis = normAxis(attrInt(node, 'axis'), rank);
  const sizes = node.inputs.map((v) => ctx.shape(v)[axis]!);
  if (n === 1) return [dy];
  const parts =
    opset >= 13
      ? b.node('Split', [dy, ints(b, sizes, 'split')], { axis }, { outputs: n })
      : b.node('Split', [dy], { axis, split: sizes }, { outputs: n });
  return parts.map((p, i) => (ctx.needsGrad(i) ? p : undefined));
};
