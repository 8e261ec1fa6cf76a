import { attrInt } from '../../ir/attrs.js';
import { normAxis, zeros } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y_i = pieces of x along axis: dx = concat(dy_i), zeros for pieces without a gradient. */
export const Split: GradRule = (ctx) => {
  const { b, node } = ctx;
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  const grads = node.outputs.map((_, i) => ctx.gradOutput(i));
  if (!ctx.needsGrad(0) || grads.every((g) => !g)) return out;
  const axis = normAxis(attrInt(node, 'axis', 0), ctx.shape(node.inputs[0]!).length);
  const pieces = node.outputs.map((o, i) => grads[i] ?? zeros(b, ctx.shape(o)));
  out[0] = pieces.length === 1 ? pieces[0] : b.op('Concat', pieces, { axis });
  return out;
};
