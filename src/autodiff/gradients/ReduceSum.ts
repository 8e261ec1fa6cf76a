import { ints, keepDimsGrad, reductionAxes } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = sum over axes (axes an input since opset 13): dx = dy broadcast back over the axes. */
export const ReduceSum: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node } = ctx;
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  if (!dy || !ctx.needsGrad(0)) return out;
  const r = reductionAxes(ctx, 13);
  if (!r) return [dy, ...out.slice(1)];
  const xs = ctx.shape(node.inputs[0]!);
  out[0] = b.op('Expand', [keepDimsGrad(b, dy, xs, r.axes, r.keepdims), ints(b, xs, 'shape')]);
  return out;
};
