import { attrFloat } from '../../ir/attrs.js';
import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = x (x > 0) or alpha*x: dx = dy or alpha*dy. */
export const LeakyRelu: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  const alpha = attrFloat(node, 'alpha', 0.01);
  const pos = b.op('Greater', [node.inputs[0]!, scalar(b, 0)]);
  return [b.op('Where', [pos, dy, b.op('Mul', [dy, scalar(b, alpha)])])];
};
