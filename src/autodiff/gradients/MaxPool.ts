/**
 * Gradient of MaxPool (any rank, pads, strides, dilations, ceil_mode,
 * auto_pad): dY is scattered onto the arg-max positions.
 *
 * The arg-max positions are MaxPool's optional second output, Indices (int64,
 * flattened over the whole NCHW input, padding not counted — storage_order 0).
 *  - If the forward node already outputs Indices (the training-graph builder
 *    may rewrite MaxPool nodes to expose it: add a second output name), the
 *    rule uses it.
 *  - Otherwise the rule appends its own MaxPool-with-Indices on the same input
 *    (same attributes). That recomputes the pool once in the backward but keeps
 *    the forward node on onnxruntime's Indices-free kernel, which is ~4× faster
 *    than the Indices variant (ResNet stem 3×3/2 on [32,64,112,112], 2 threads:
 *    37 ms vs 156 ms); forward+backward totals measured equal (~300 ms) either
 *    way, so the training-graph builder does NOT need to rewrite MaxPool nodes.
 *    Both give identical arg-max choices (first maximum in window order).
 * Scatter: ScatterElements(reduction='add') of the flattened dY into zeros of
 * N·C·H·W elements (windows overlap when kernel > stride; opset ≥ 16). When
 * windows cannot overlap (kernel·dilation ≤ stride on every axis) a plain
 * ScatterElements is used, which also works before opset 16.
 *
 * Formulation 'mask' (GradFormulations.maxPoolInput), for 2-D windows that tile the input
 * (kernel = stride, no pads or dilation, floor mode): X viewed as [N, C, OH, kh, OW, kw] is
 * compared with Y broadcast over each window; the first maximum in window order (row-major,
 * as the Indices output picks it) is kept by counting the equal taps before each one —
 * exclusive CumSum along the window's columns plus an exclusive CumSum of whole rows — and
 * keeping a tap where it is equal and nothing before it was: Relu(eq − before). dX is that
 * mask times dY broadcast, with zero rows and columns where floor mode left some out.
 * Only elementwise ops, no Indices output and no scatter.
 *
 * For the WebGPU target (its MaxPool kernel has no Indices output) the arg-max is found
 * without indices: for each window offset k (in window order), the strided slice of the
 * (−∞-padded) input at k equals Y where the maximum sits; the first offset to match takes
 * dY (a "not yet taken" mask keeps the first-maximum choice of the Indices kernel), and dY·mask
 * is put back on the input grid by interleaving zeros (Reshape/Pad) and shifting by k.
 * Elementwise ops, Slice, Pad and Reshape only; kernel-size many terms.
 */
import { attrInt, attrInts } from '../../ir/attrs.js';
import { floatTensor } from '../../ir/tensor.js';
import { DataType } from '../../ir/types.js';
import type { GradContext, GradRule } from '../types.js';
import type { GraphBuilder } from '../../ir/builder.js';
import type { Node } from '../../ir/graph.js';
import { padZeros, product, reduce, reshape, slice } from '../helpers.js';
import { resolveWindow } from './_window.js';

export const MaxPool: GradRule = (ctx) => {
  const { node, b } = ctx;
  const res: (string | undefined)[] = node.inputs.map(() => undefined);
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return res;
  if (attrInt(node, 'storage_order', 0) !== 0)
    throw new Error(`MaxPool gradient: node '${node.name}' has storage_order=1 (column-major indices), which is not supported`);
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  const ys = ctx.shape(node.outputs[0]!);
  if (ctx.target === 'webgpu' && !node.outputs[1]) {
    res[0] = maxPoolGradByMasks(b, node, x, xs, node.outputs[0]!, ys, dy, ctx.opset);
    return res;
  }
  const form = ctx.formulations.maxPoolInput;
  if (form !== 'scatter' && tilesInput(ctx, xs, ys)) {
    res[0] = maskInputGrad(ctx, dy, xs, ys);
    return res;
  }
  if (form === 'mask' && xs.length === 4)
    throw new Error(`MaxPool gradient: node '${node.name}': the 'mask' formulation needs windows that tile the input (kernel = stride, no pads, dilation 1, floor mode)`);
  let indices = node.outputs[1];
  if (!indices) {
    const attrs: Record<string, import('../../ir/attrs.js').AttrValue> = {};
    for (const [k, v] of Object.entries(node.attrs)) attrs[k] = v;
    indices = b.node('MaxPool', [x], attrs, { outputs: 2, name: 'MaxPoolIndices' })[1]!;
  }
  const kernel = attrInts(node, 'kernel_shape');
  const strides = attrInts(node, 'strides', kernel.map(() => 1));
  const dil = attrInts(node, 'dilations', kernel.map(() => 1));
  const overlap = kernel.some((k, i) => (k - 1) * dil[i]! + 1 > strides[i]!);
  const n = product(xs);
  const z = b.op('ConstantOfShape', [b.constInt64([n], [1], 'shape')], { value: floatTensor('value', [1], [0]) }, 'Zeros');
  const idx = reshape(b, indices, [product(ys)]);
  const upd = reshape(b, dy, [product(ys)]);
  if (overlap && ctx.opset < 16)
    throw new Error(`MaxPool gradient: node '${node.name}' has overlapping windows, which needs ScatterElements(reduction='add') (opset ≥ 16; graph is opset ${ctx.opset})`);
  const scat = b.op('ScatterElements', [z, idx, upd], { axis: 0, reduction: overlap ? 'add' : undefined });
  res[0] = reshape(b, scat, xs);
  return res;
};

/** 2-D windows that tile the input: kernel = stride, no pads, dilation 1, floor mode. */
function tilesInput(ctx: GradContext, xs: number[], ys: number[]): boolean {
  const { node } = ctx;
  if (xs.length !== 4 || ys.length !== 4) return false;
  const kernel = attrInts(node, 'kernel_shape');
  const strides = attrInts(node, 'strides', kernel.map(() => 1));
  const dil = attrInts(node, 'dilations', kernel.map(() => 1));
  const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
  const autoPad = node.attrs['auto_pad'];
  const noAutoPad = !autoPad || (autoPad.type === 'string' && (autoPad.value === 'NOTSET' || autoPad.value === 'VALID'));
  return (
    noAutoPad &&
    attrInt(node, 'ceil_mode', 0) === 0 &&
    pads.every((p) => p === 0) &&
    dil.every((d) => d === 1) &&
    kernel.every((k, i) => k === strides[i]) &&
    ys[2]! === Math.floor(xs[2]! / kernel[0]!) &&
    ys[3]! === Math.floor(xs[3]! / kernel[1]!)
  );
}

/** dX by the equality mask of each tiling window's first maximum (see the file comment). */
function maskInputGrad(ctx: GradContext, dy: string, xs: number[], ys: number[]): string {
  const { b, node, opset } = ctx;
  const [N, C, H, W] = xs as [number, number, number, number];
  const [OH, OW] = ys.slice(2) as [number, number];
  const [kh, kw] = attrInts(node, 'kernel_shape') as [number, number];
  const Hc = OH * kh;
  const Wc = OW * kw;
  const cropped = Hc === H && Wc === W ? node.inputs[0]! : slice(b, node.inputs[0]!, [0, 0], [Hc, Wc], [2, 3], undefined, opset);
  const x6 = reshape(b, cropped, [N, C, OH, kh, OW, kw]);
  const y6 = reshape(b, node.outputs[0]!, [N, C, OH, 1, OW, 1]);
  const eq = b.op('Cast', [b.op('Equal', [x6, y6])], { to: DataType.FLOAT });
  // Equal taps before each tap in row-major window order: earlier rows, then earlier columns of its row.
  const rows = reduce(b, 'ReduceSum', eq, [5], true, opset); // [N, C, OH, kh, OW, 1]
  const cumsum = (v: string, axis: number) => b.op('CumSum', [v, b.constInt64([axis], [], 'axis')], { exclusive: 1 });
  const before = b.op('Add', [cumsum(rows, 3), cumsum(eq, 5)]);
  const first = b.op('Relu', [b.op('Sub', [eq, before])]);
  const dx6 = b.op('Mul', [first, reshape(b, dy, [N, C, OH, 1, OW, 1])]);
  const dx = reshape(b, dx6, [N, C, Hc, Wc]);
  return Hc === H && Wc === W ? dx : padZeros(b, dx, [0, 0, 0, 0], [0, 0, H - Hc, W - Wc], opset);
}

/** dX of MaxPool from window-offset masks (see the header); `y` is the forward output. */
function maxPoolGradByMasks(b: GraphBuilder, node: Node, x: string, xs: number[], y: string, ys: number[], dy: string, opset: number): string {
  if (opset < 11) throw new Error(`MaxPool gradient for WebGPU: node '${node.name}' needs Pad with input pads (opset ≥ 11; graph is opset ${opset})`);
  const kernel = attrInts(node, 'kernel_shape');
  const r = kernel.length;
  const spatialIn = xs.slice(2);
  const spatialOut = ys.slice(2);
  const w = resolveWindow(node, kernel, spatialIn, spatialOut);
  const axes = spatialIn.map((_, i) => i + 2);
  // Padded input extent: what the windows cover, and at least the input itself.
  const extent = spatialOut.map((o, i) => (o - 1) * w.strides[i]! + (kernel[i]! - 1) * w.dilations[i]! + 1);
  const total = spatialIn.map((d, i) => Math.max(extent[i]!, w.pads[i]! + d));
  const endPads = spatialIn.map((d, i) => total[i]! - w.pads[i]! - d);
  const padded = b.op('Pad', [x, b.constInt64([0, 0, ...w.pads.slice(0, r), 0, 0, ...endPads]), b.constFloat([-3.4028234663852886e38], [], 'neg_inf')]);
  const span = spatialOut.map((o, i) => (o - 1) * w.strides[i]! + 1);
  const offsets: number[][] = [[]];
  for (let i = 0; i < r; i++) offsets.splice(0, offsets.length, ...offsets.flatMap((o) => Array.from({ length: kernel[i]! }, (_, k) => [...o, k * w.dilations[i]!])));
  const one = b.constFloat([1], [], 'one');
  const zero = b.constFloat([0], [], 'zero');
  let free: string | undefined; // 1 where no earlier offset took the maximum
  let grad: string | undefined;
  for (const off of offsets) {
    const window = slice(b, padded, off, off.map((o, i) => o + span[i]!), axes, w.strides, opset);
    const isMax = b.op('Equal', [window, y]);
    const take = b.op('Where', [isMax, free ?? one, zero]);
    free = b.op('Sub', [free ?? one, take]);
    const part = placeStrided(b, b.op('Mul', [dy, take]), ys, w.strides, off, total, opset);
    grad = grad ? b.op('Add', [grad, part]) : part;
  }
  const ends = spatialIn.map((d, i) => w.pads[i]! + d);
  return slice(b, grad!, w.pads.slice(0, r), ends, axes, undefined, opset);
}

/** Puts t [N, C, o…] at rows off + s·j of a zero tensor [N, C, total…] (the adjoint of a strided slice). */
function placeStrided(b: GraphBuilder, t: string, ts: number[], strides: number[], off: number[], total: number[], opset: number): string {
  const [N, C, ...out] = ts as [number, number, ...number[]];
  let v = t;
  if (strides.some((s) => s > 1)) {
    // [N, C, o1, 1, o2, 1, …] → zeros after each element → [N, C, o1·s1, o2·s2, …] → drop the trailing zeros.
    v = reshape(b, v, [N, C, ...out.flatMap((o) => [o, 1])]);
    v = padZeros(b, v, new Array<number>(2 + 2 * out.length).fill(0), [0, 0, ...strides.flatMap((s) => [0, s - 1])], opset);
    v = reshape(b, v, [N, C, ...out.map((o, i) => o * strides[i]!)]);
    v = slice(b, v, out.map(() => 0), out.map((o, i) => (o - 1) * strides[i]! + 1), out.map((_, i) => i + 2), undefined, opset);
  }
  const ends = out.map((o, i) => total[i]! - off[i]! - ((o - 1) * strides[i]! + 1));
  return padZeros(b, v, [0, 0, ...off], [0, 0, ...ends], opset);
}
