import { ints, keepDimsGrad, reductionAxes, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = mean over axes (axes an input since opset 18): dx = dy/N broadcast back over the axes. */
export const ReduceMean: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node } = ctx;
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  if (!dy || !ctx.needsGrad(0)) return out;
  const r = reductionAxes(ctx, 18);
  if (!r) return [dy, ...out.slice(1)];
  const xs = ctx.shape(node.inputs[0]!);
  const count = r.axes.reduce((a, ax) => a * xs[ax]!, 1);
  const scaled = b.op('Mul', [keepDimsGrad(b, dy, xs, r.axes, r.keepdims), scalar(b, 1 / count)]);
  out[0] = b.op('Expand', [scaled, ints(b, xs, 'shape')]);
  return out;
};
