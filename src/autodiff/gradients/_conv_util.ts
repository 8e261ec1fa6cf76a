/**
 * Helpers shared by the heavy gradient rules (Conv, BatchNormalization, pools,
 * Gemm, MatMul): opset-aware emitters for ops whose signature changed across
 * opsets (Reduce*, Unsqueeze, Squeeze), window/padding resolution, and
 * "sum a broadcast gradient back to an input's shape".
 *
 * Everything emitted is standard ai.onnx.
 */
import type { GraphBuilder } from '../../ir/builder.js';
import type { Node } from '../../ir/graph.js';
import { attrInts, attrString } from '../../ir/attrs.js';
import { padZeros as padZerosOp, product, reduceToShape, reshape, slice as sliceOp } from '../helpers.js';

/** ReduceSum / ReduceMean / … with `axes` as an input where the opset wants it. */
export function reduce(b: GraphBuilder, op: 'ReduceSum' | 'ReduceMean' | 'ReduceMax', x: string, axes: number[], keepdims: boolean, opset: number): string {
  const axesAsInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
  if (axesAsInput) return b.op(op, [x, b.constInt64(axes, [axes.length], 'axes')], { keepdims: keepdims ? 1 : 0 });
  return b.op(op, [x], { axes, keepdims: keepdims ? 1 : 0 });
}

export function unsqueeze(b: GraphBuilder, x: string, axes: number[], opset: number): string {
  if (opset >= 13) return b.op('Unsqueeze', [x, b.constInt64(axes, [axes.length], 'axes')]);
  return b.op('Unsqueeze', [x], { axes });
}

export { reshape };

export function transpose(b: GraphBuilder, x: string, perm: number[]): string {
  return b.op('Transpose', [x], { perm });
}

/** Slice with constant starts/ends/axes/steps (the inputs form, opset ≥ 10). */
export function slice(b: GraphBuilder, x: string, starts: number[], ends: number[], axes: number[], steps?: number[]): string {
  return sliceOp(b, x, starts, ends, axes, steps, 10);
}

/** Pad with constant zeros; `pads` is ONNX's [begins…, ends…]. */
export function padZeros(b: GraphBuilder, x: string, pads: number[], opset: number): string {
  const half = pads.length / 2;
  return padZerosOp(b, x, pads.slice(0, half), pads.slice(half), opset);
}

export const prod = (a: readonly number[]) => product([...a]);

/** Sums a broadcast gradient of shape `from` down to `to` (numpy broadcasting). */
export function sumToShape(b: GraphBuilder, g: string, from: readonly number[], to: readonly number[], opset: number): string {
  return reduceToShape(b, g, [...from], [...to], opset);
}

export interface Window2d {
  /** Spatial rank (2 for NCHW). */
  rank: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Explicit begin pads then end pads, resolved from auto_pad. */
  pads: number[];
}

/**
 * Resolves a Conv/Pool node's window attributes to explicit pads, using the
 * static input spatial shape `inSpatial` and output spatial shape `outSpatial`.
 * For SAME_* the pads are those the ONNX spec defines; `ceil_mode` extra rows
 * are not counted into pads (callers that need them derive from `outSpatial`).
 */
export function resolveWindow(node: Node, kernel: number[], inSpatial: number[], outSpatial: number[]): Window2d {
  const rank = kernel.length;
  const strides = attrInts(node, 'strides', new Array(rank).fill(1));
  const dilations = attrInts(node, 'dilations', new Array(rank).fill(1));
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads: number[];
  if (autoPad === 'NOTSET') pads = attrInts(node, 'pads', new Array(2 * rank).fill(0));
  else if (autoPad === 'VALID') pads = new Array(2 * rank).fill(0);
  else {
    pads = new Array(2 * rank).fill(0);
    for (let i = 0; i < rank; i++) {
      const total = Math.max(0, (outSpatial[i]! - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - inSpatial[i]!);
      const small = Math.floor(total / 2);
      if (autoPad === 'SAME_UPPER') {
        pads[i] = small;
        pads[i + rank] = total - small;
      } else {
        pads[i] = total - small;
        pads[i + rank] = small;
      }
    }
  }
  return { rank, kernel, strides, dilations, pads };
}

/**
 * Explicit pads + output_padding for a ConvTranspose that maps an output-sized
 * gradient back onto an input of spatial size `inSpatial` (the adjoint of a
 * strided window op with begin pads `pads[0..r)`).
 */
export function transposePads(w: Window2d, inSpatial: number[], outSpatial: number[]): { pads: number[]; outputPadding: number[] } {
  const r = w.rank;
  const pads = new Array(2 * r).fill(0);
  const outputPadding = new Array(r).fill(0);
  for (let i = 0; i < r; i++) {
    const begin = w.pads[i]!;
    const full = w.strides[i]! * (outSpatial[i]! - 1) + (w.kernel[i]! - 1) * w.dilations[i]! + 1; // extent covered by windows
    const total = full - begin; // ConvTranspose output size with end pad 0
    pads[i] = begin;
    if (total >= inSpatial[i]!) pads[i + r] = total - inSpatial[i]!;
    else outputPadding[i] = inSpatial[i]! - total;
  }
  return { pads, outputPadding };
}
