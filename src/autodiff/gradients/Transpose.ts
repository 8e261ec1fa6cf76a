import { attrInts } from '../../ir/attrs.js';
import type { GradRule } from '../types.js';

/** y = transpose(x, perm): dx = transpose(dy, inverse(perm)); perm defaults to reversed axes. */
export const Transpose: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const rank = ctx.shape(ctx.node.inputs[0]!).length;
  const perm = attrInts(ctx.node, 'perm', Array.from({ length: rank }, (_, i) => rank - 1 - i));
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p < 0 ? p + rank : p] = i));
  return [ctx.b.op('Transpose', [dy], { perm: inv })];
};
