/**
 * Window geometry shared by the Conv and pooling gradient rules: a node's
 * kernel/stride/dilation/pad attributes resolved to explicit pads (auto_pad
 * included), and the pads of the ConvTranspose that is a strided window's adjoint.
 * The op emitters these rules use live in ../helpers.ts (one per op, opset-aware).
 */
import type { Node } from '../../ir/graph.js';
import { attrInts, attrString } from '../../ir/attrs.js';

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
