import { keepDimsGrad, reductionAxes } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = log(sum(exp(x))) over axes (axes an input since opset 18): dx = dy * exp(x - y). */
export const ReduceLogSumExp: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node } = ctx;
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  if (!dy || !ctx.needsGrad(0)) return out;
  const r = reductionAxes(ctx, 18);
  if (!r) return [dy, ...out.slice(1)];
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  const yk = keepDimsGrad(b, node.outputs[0]!, xs, r.axes, r.keepdims);
  const dyk = keepDimsGrad(b, dy, xs, r.axes, r.keepdims);
  out[0] = b.op('Mul', [dyk, b.op('Exp', [b.op('Sub', [x, yk])])]);
  return out;
};
