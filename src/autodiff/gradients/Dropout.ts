import { attrFloat } from '../../ir/attrs.js';
import { constScalar, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/**
 * Inference mode (no training_mode, or a constant false; always before opset 12)
 * or ratio 0: identity. Training mode: dx = dy * mask / (1 - ratio), which needs
 * the mask output.
 */
export const Dropout: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  if (!dy || !ctx.needsGrad(0)) return out;
  if (opset < 12 || !node.inputs[2]) return [dy, ...out.slice(1)];
  const training = constScalar(ctx, node.inputs[2]);
  if (training === 0) return [dy, ...out.slice(1)];
  const ratioName = node.inputs[1] || undefined;
  const ratio = ratioName ? constScalar(ctx, ratioName) : attrFloat(node, 'ratio', 0.5);
  if (ratio === 0) return [dy, ...out.slice(1)];
  const mask = node.outputs[1];
  if (!mask)
    throw new Error(
      `node '${node.name}' (Dropout) runs in training mode without its mask output; give the node a mask output so its gradient can be built`,
    );
  const scale = ratio !== undefined ? scalar(b, 1 / (1 - ratio)) : b.op('Reciprocal', [b.op('Sub', [scalar(b, 1), ratioName!])]);
  const masked = b.op('Mul', [b.op('Mul', [dy, b.op('Cast', [mask], { to: ctx.elemType(node.inputs[0]!) })]), scale]);
  out[0] = training === undefined ? b.op('Where', [node.inputs[2], masked, dy]) : masked;
  return out;
};
