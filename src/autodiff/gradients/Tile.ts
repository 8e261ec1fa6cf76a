import { reduceSum, reshape } from '../helpers.js';
import type { GradRule } from '../types.js';

/**
 * y = tile(x, repeats): y's axis i is repeats[i] copies of x's, so dy reshaped to
 * [r0, x0, r1, x1, ...] and summed over the r axes is dx.
 */
export const Tile: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined, undefined];
  const { b, node, opset } = ctx;
  const xs = ctx.shape(node.inputs[0]!);
  const ys = ctx.shape(node.outputs[0]!);
  const reps = ys.map((d, i) => (xs[i] === 0 ? 1 : d / xs[i]!));
  if (reps.every((r) => r === 1)) return [dy, undefined];
  const split = xs.flatMap((d, i) => [reps[i]!, d]);
  const axes = xs.map((_, i) => 2 * i).filter((a) => split[a] !== 1);
  const summed = reduceSum(b, reshape(b, dy, split), axes, true, opset);
  return [reshape(b, summed, xs), undefined];
};
