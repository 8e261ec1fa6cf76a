import { attrInts } from '../../ir/attrs.js';
import { normAxis, padZeros, product, reshape, slice, zeros } from '../helpers.js';
import type { GradContext, GradRule } from '../types.js';

interface AxisSlice {
  axis: number;
  /** First selected index, stride (> 0) and count, after normalising negative steps. */
  first: number;
  stride: number;
  count: number;
  /** Whether the selection runs backwards (negative step): dy must be reversed first. */
  reversed: boolean;
}

/** ONNX Slice semantics: negative indices count from the end, out-of-range ones are clamped. */
export function sliceAxes(dims: number[], starts: number[], ends: number[], axes: number[], steps: number[]): AxisSlice[] {
  return axes.map((a, i) => {
    const axis = normAxis(a, dims.length);
    const d = dims[axis]!;
    const step = steps[i] ?? 1;
    if (step === 0) throw new Error('Slice step 0');
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
    } else {
      s = Math.min(Math.max(s, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
    }
    const count = step > 0 ? Math.max(0, Math.ceil((e - s) / step)) : Math.max(0, Math.ceil((s - e) / -step));
    return step > 0
      ? { axis, first: s, stride: step, count, reversed: false }
      : { axis, first: s + (count - 1) * step, stride: -step, count, reversed: true };
  });
}

function constantParams(ctx: GradContext): { starts: number[]; ends: number[]; axes: number[]; steps: number[] } | undefined {
  const n = ctx.node;
  if (ctx.opset < 10) {
    const starts = attrInts(n, 'starts');
    return { starts, ends: attrInts(n, 'ends'), axes: attrInts(n, 'axes', starts.map((_, i) => i)), steps: starts.map(() => 1) };
  }
  const get = (i: number) => (n.inputs[i] ? ctx.constant(n.inputs[i]!) : null);
  const starts = get(1);
  const ends = get(2);
  const axes = get(3);
  const steps = get(4);
  if (!starts || !ends || axes === undefined || steps === undefined) return undefined;
  return {
    starts,
    ends,
    axes: axes ?? starts.map((_, i) => i),
    steps: steps ?? starts.map(() => 1),
  };
}

/**
 * y = x[starts:ends:steps]: dx = dy placed back into zeros. Constant
 * parameters: Pad for unit steps, a zero-interleaving Reshape/Pad construction
 * for other steps (negative ones reverse dy first). Computed parameters:
 * ScatterElements of dy at the sliced positions of an index tensor.
 */
export const Slice: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  const out: (string | undefined)[] = node.inputs.map(() => undefined);
  if (!dy || !ctx.needsGrad(0)) return out;
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  const p = constantParams(ctx);
  if (!p) {
    const n = product(xs);
    const range = b.op('Range', [b.constInt64([0], [], 'zero'), b.constInt64([n], [], 'count'), b.constInt64([1], [], 'one')]);
    const picked = b.op('Slice', [reshape(b, range, xs), ...node.inputs.slice(1)]);
    const scattered = b.op('ScatterElements', [zeros(b, [n]), reshape(b, picked, [-1]), reshape(b, dy, [-1])], { axis: 0 });
    out[0] = reshape(b, scattered, xs);
    return out;
  }
  const cur = [...ctx.shape(node.outputs[0]!)];
  let g = dy;
  const begins = xs.map(() => 0);
  const ends = xs.map(() => 0);
  for (const s of sliceAxes(xs, p.starts, p.ends, p.axes, p.steps)) {
    const d = xs[s.axis]!;
    if (s.count === 0) {
      out[0] = zeros(b, xs);
      return out;
    }
    if (s.reversed && s.count > 1) g = slice(b, g, [s.count - 1], [-s.count - 1], [s.axis], [-1], opset);
    if (s.stride === 1) {
      begins[s.axis] = s.first;
      ends[s.axis] = d - s.first - s.count;
      continue;
    }
    // [.., c, ..] → [.., c, 1, ..] → pad to [.., c, stride, ..] → [.., c*stride, ..]
    const withUnit = [...cur.slice(0, s.axis + 1), 1, ...cur.slice(s.axis + 1)];
    g = reshape(b, g, withUnit);
    const pb = withUnit.map(() => 0);
    const pe = withUnit.map(() => 0);
    pe[s.axis + 1] = s.stride - 1;
    g = padZeros(b, g, pb, pe, opset);
    let len = s.count * s.stride;
    cur[s.axis] = len;
    g = reshape(b, g, cur);
    const room = d - s.first;
    if (len > room) {
      g = slice(b, g, [0], [room], [s.axis], undefined, opset);
      len = room;
      cur[s.axis] = len;
    }
    begins[s.axis] = s.first;
    ends[s.axis] = d - s.first - len;
  }
  out[0] = padZeros(b, g, begins, ends, opset);
  return out;
};
