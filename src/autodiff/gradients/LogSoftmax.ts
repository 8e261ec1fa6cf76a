import { reduceSum } from '../helpers.js';
import type { GradRule } from '../types.js';
import { softmaxAxes } from './Softmax.js';

/** y = x - logsumexp(x): dx = dy - exp(y) * sum(dy) over the softmax axes. */
export const LogSoftmax: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node, opset } = ctx;
  const s = reduceSum(b, dy, softmaxAxes(ctx), true, opset);
  return [b.op('Sub', [dy, b.op('Mul', [b.op('Exp', [node.outputs[0]!]), s])])];
};
