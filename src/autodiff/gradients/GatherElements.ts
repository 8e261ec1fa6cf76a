import { attrInt } from '../../ir/attrs.js';
import { normAxis } from '../helpers.js';
import type { GradRule } from '../types.js';
import { scatterAdd } from './Gather.js';

/** y[i][j] = x[idx[i][j]][j] (axis 0): dx = dy added into zeros at the gathered positions. */
export const GatherElements: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined, undefined];
  const [x, indices] = ctx.node.inputs as [string, string];
  const xs = ctx.shape(x);
  const a = normAxis(attrInt(ctx.node, 'axis', 0), xs.length);
  return [scatterAdd(ctx, xs, indices, dy, ctx.shape(indices), a), undefined];
};
