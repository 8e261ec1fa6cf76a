import { attrInts, attrString } from '../../ir/attrs.js';
import { normAxis, padZeros, reduceSum, slice } from '../helpers.js';
import { NoGradientRuleError, type GradRule } from '../types.js';

/**
 * Constant-mode Pad: dx = the un-padded window of dy (Slice); negative pads
 * (crops) become zero padding. The pad value's gradient is what dy holds outside.
 */
export const Pad: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  if (!dy) return out;
  const mode = attrString(node, 'mode', 'constant');
  if (mode !== 'constant') throw new NoGradientRuleError(node.name, `Pad(mode=${mode})`);
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  const rank = xs.length;
  let pads: number[];
  if (opset >= 11) {
    const c = ctx.constant(node.inputs[1]!);
    if (!c) throw new Error(`node '${node.name}' (Pad): pads '${node.inputs[1]}' must be a constant for its gradient to be built`);
    pads = c;
  } else pads = attrInts(node, opset >= 2 ? 'pads' : 'paddings');
  let axes = Array.from({ length: rank }, (_, i) => i);
  if (opset >= 18 && node.inputs[3]) {
    const a = ctx.constant(node.inputs[3]);
    if (!a) throw new Error(`node '${node.name}' (Pad): axes '${node.inputs[3]}' must be a constant for its gradient to be built`);
    axes = a.map((v) => normAxis(v, rank));
  }
  const begin = xs.map(() => 0);
  const end = xs.map(() => 0);
  axes.forEach((a, i) => {
    begin[a] = pads[i]!;
    end[a] = pads[i + axes.length]!;
  });
  const wantValue = opset >= 11 && !!node.inputs[2] && ctx.needsGrad(2);
  if (!ctx.needsGrad(0) && !wantValue) return out;
  const all = xs.map((_, i) => i);
  const g = padZeros(b, dy, begin.map((p) => Math.max(0, -p)), end.map((p) => Math.max(0, -p)), opset);
  const starts = begin.map((p) => Math.max(0, p));
  const dx = slice(b, g, starts, starts.map((s, i) => s + xs[i]!), all, undefined, opset);
  if (ctx.needsGrad(0)) out[0] = dx;
  if (wantValue) {
    // Every element of dy not taken from x came from the pad value.
    const diff = b.op('Sub', [reduceSum(b, dy, all, false, opset), reduceSum(b, dx, all, false, opset)]);
    const vs = ctx.shape(node.inputs[2]!);
    out[2] = vs.length === 0 ? diff : b.op('Reshape', [diff, b.constInt64(vs, [vs.length], 'shape')]);
  }
  return out;
};
