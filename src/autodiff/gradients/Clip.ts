import { attrFloat } from '../../ir/attrs.js';
import { activationMaskSource, reduceToShape, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/**
 * y = min(max(x, lo), hi): dx = dy where lo < x < hi. lo/hi are inputs from
 * opset 11 (attributes before); their gradients collect dy where x is clipped.
 * lo < x < hi exactly where lo < y < hi (y is x clipped; with lo ≥ hi neither holds), so dx's
 * mask may read y (GradFormulations.activationMask), which lets a Conv before the Clip fuse with it.
 */
export const Clip: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return node.inputs.map(() => undefined);
  const x = node.inputs[0]!;
  let lo: string | undefined;
  let hi: string | undefined;
  if (opset >= 11) {
    lo = node.inputs[1] || undefined;
    hi = node.inputs[2] || undefined;
  } else {
    if (node.attrs['min']) lo = scalar(b, attrFloat(node, 'min'));
    if (node.attrs['max']) hi = scalar(b, attrFloat(node, 'max'));
  }
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  const zero = scalar(b, 0);
  if (ctx.needsGrad(0)) {
    const masked = activationMaskSource(ctx);
    let mask: string | undefined;
    if (lo) mask = b.op('Greater', [masked, lo]);
    if (hi) {
      const below = b.op('Less', [masked, hi]);
      mask = mask ? b.op('And', [mask, below]) : below;
    }
    out[0] = mask ? b.op('Where', [mask, dy, zero]) : dy;
  }
  const yShape = ctx.shape(node.outputs[0]!);
  if (opset >= 11 && lo && ctx.needsGrad(1))
    out[1] = reduceToShape(b, b.op('Where', [b.op('LessOrEqual', [x, lo]), dy, zero]), yShape, ctx.shape(lo), opset);
  if (opset >= 11 && hi && ctx.needsGrad(2)) {
    const clippedHigh = lo ? b.op('And', [b.op('GreaterOrEqual', [x, hi]), b.op('Greater', [x, lo])]) : b.op('GreaterOrEqual', [x, hi]);
    out[2] = reduceToShape(b, b.op('Where', [clippedHigh, dy, zero]), yShape, ctx.shape(hi), opset);
  }
  return out;
};
