/**
 * Small building blocks shared by the gradient rules: opset-aware reductions,
 * broadcasting reduction, constants and axis/attribute readers.
 */
import type { GraphBuilder } from '../ir/builder.js';
import { attrInt, attrInts, f } from '../ir/attrs.js';
import { floatTensor, numElements } from '../ir/tensor.js';
import { DataType } from '../ir/types.js';
import type { GradContext } from './types.js';

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

export function isFloatType(elemType: number): boolean {
  return FLOAT_TYPES.has(elemType);
}

/** Normalises a possibly negative axis for a tensor of `rank`. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= Math.max(rank, 1)) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

const scalarCache = new WeakMap<GraphBuilder, Map<string, string>>();

/** A float32 scalar constant (one initializer per value and builder). */
export function scalar(b: GraphBuilder, v: number): string {
  let m = scalarCache.get(b);
  if (!m) scalarCache.set(b, (m = new Map()));
  const key = Object.is(v, -0) ? '-0' : String(v);
  let name = m.get(key);
  if (!name || !b.graph.initializers.has(name)) {
    name = b.constFloat([v], [], 'scalar');
    m.set(key, name);
  }
  return name;
}

/** An int64 1-D constant. */
export function ints(b: GraphBuilder, values: number[], base = 'ints'): string {
  return b.constInt64(values, [values.length], base);
}

/** Float32 zeros of static `dims` (ConstantOfShape, so nothing large is stored). */
export function zeros(b: GraphBuilder, dims: number[]): string {
  return b.op('ConstantOfShape', [ints(b, dims, 'shape')], { value: floatTensor('value', [1], [0]) }, 'Zeros');
}

export function reshape(b: GraphBuilder, x: string, dims: number[]): string {
  return b.op('Reshape', [x, ints(b, dims, 'shape')]);
}

/** The reductions the gradient rules emit. */
export type ReduceOp = 'ReduceSum' | 'ReduceMean' | 'ReduceMax';

/** A reduction over `axes`: axes are an input from opset 13 (ReduceSum) or 18 (the others), an attribute before. */
export function reduce(b: GraphBuilder, op: ReduceOp, x: string, axes: number[], keepdims: boolean, opset: number): string {
  const axesAsInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
  if (axesAsInput) return b.op(op, [x, ints(b, axes, 'axes')], { keepdims: keepdims ? 1 : 0 });
  return b.op(op, [x], { axes, keepdims: keepdims ? 1 : 0 });
}

/** ReduceSum over `axes` (the common case of `reduce`). */
export function reduceSum(b: GraphBuilder, x: string, axes: number[], keepdims: boolean, opset: number): string {
  return reduce(b, 'ReduceSum', x, axes, keepdims, opset);
}

/** Unsqueeze (axes as input since opset 13, attribute before). */
export function unsqueeze(b: GraphBuilder, x: string, axes: number[], opset: number): string {
  if (opset >= 13) return b.op('Unsqueeze', [x, ints(b, axes, 'axes')]);
  return b.op('Unsqueeze', [x], { axes });
}

export function transpose(b: GraphBuilder, x: string, perm: number[]): string {
  return b.op('Transpose', [x], { perm });
}

/**
 * Sums a gradient of shape `from` back to the shape `to` of an operand that
 * numpy-broadcast to `from` (ReduceSum over broadcast axes, then Reshape).
 */
export function reduceToShape(b: GraphBuilder, g: string, from: readonly number[], to: readonly number[], opset: number): string {
  if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
  const lead = from.length - to.length;
  if (lead < 0) throw new Error(`cannot reduce a gradient of shape [${from}] to the larger shape [${to}]`);
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead) axes.push(i);
    else if (to[i - lead] === 1 && from[i] !== 1) axes.push(i);
  }
  let r = g;
  if (axes.length) r = reduceSum(b, r, axes, true, opset);
  // After keepdims the shape is `from` with the axes set to 1; drop the leading ones.
  const kept = from.map((d, i) => (axes.includes(i) ? 1 : d));
  const same = kept.length === to.length && kept.every((d, i) => d === to[i]);
  return same ? r : reshape(b, r, [...to]);
}

/**
 * Integer list given either as an optional input (from `sinceOpset`) or an
 * attribute (before); undefined when absent. Throws if the input is not constant.
 */
export function intsInputOrAttr(ctx: GradContext, inputIndex: number, attr: string, sinceOpset: number): number[] | undefined {
  const n = ctx.node;
  if (ctx.opset >= sinceOpset) {
    const v = n.inputs[inputIndex];
    if (!v) return undefined;
    const c = ctx.constant(v);
    if (!c)
      throw new Error(`node '${n.name}' (${n.opType}): input '${v}' (${attr}) must be a constant for its gradient to be built`);
    return c;
  }
  return n.attrs[attr] ? attrInts(n, attr) : undefined;
}

/** A float value from a constant input, when it is one. */
export function constScalar(ctx: GradContext, v: string | undefined): number | undefined {
  if (!v) return undefined;
  const c = ctx.constant(v);
  return c && c.length === 1 ? c[0] : undefined;
}

export function product(dims: readonly number[]): number {
  return numElements(dims);
}

/** Shape of a reduction's output with keepdims=1. */
export function keptShape(dims: number[], axes: number[]): number[] {
  return dims.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Pad with zeros (pads as input since opset 11, attribute before). Negative amounts are not allowed here. */
export function padZeros(b: GraphBuilder, x: string, begins: number[], ends: number[], opset: number): string {
  if (begins.every((p) => p === 0) && ends.every((p) => p === 0)) return x;
  const pads = [...begins, ...ends];
  if (opset >= 11) return b.op('Pad', [x, ints(b, pads, 'pads')], { mode: 'constant' });
  return b.op('Pad', [x], { mode: 'constant', pads, value: f(0) });
}

/** Slice (inputs since opset 10, attributes before, where only unit steps exist). */
export function slice(b: GraphBuilder, x: string, starts: number[], ends: number[], axes: number[], steps: number[] | undefined, opset: number): string {
  if (opset >= 10) {
    const inputs = [x, ints(b, starts, 'starts'), ints(b, ends, 'ends'), ints(b, axes, 'axes')];
    if (steps && steps.some((s) => s !== 1)) inputs.push(ints(b, steps, 'steps'));
    return b.op('Slice', inputs);
  }
  if (steps && steps.some((s) => s !== 1)) throw new Error('Slice with steps needs opset 10 or later');
  return b.op('Slice', [x], { starts, ends, axes });
}

/**
 * The axes a Reduce* node reduces over (normalised, sorted), or null when it
 * is the identity (empty axes with noop_with_empty_axes=1). Axes come from an
 * input from `inputSince` on, from the attribute before.
 */
export function reductionAxes(ctx: GradContext, inputSince: number): { axes: number[]; keepdims: boolean } | null {
  const n = ctx.node;
  const rank = ctx.shape(n.inputs[0]!).length;
  const keepdims = attrInt(n, 'keepdims', 1) !== 0;
  const noop = attrInt(n, 'noop_with_empty_axes', 0) !== 0;
  const given = intsInputOrAttr(ctx, 1, 'axes', inputSince) ?? [];
  if (given.length === 0) {
    if (noop && ctx.opset >= inputSince) return null;
    return { axes: Array.from({ length: rank }, (_, i) => i), keepdims };
  }
  const axes = [...new Set(given.map((a) => normAxis(a, rank)))].sort((p, q) => p - q);
  return { axes, keepdims };
}

/** Gradient of a reduction's output broadcast back to keepdims form (Reshape when keepdims=0). */
export function keepDimsGrad(b: GraphBuilder, dy: string, xShape: number[], axes: number[], keepdims: boolean): string {
  return keepdims ? dy : reshape(b, dy, keptShape(xShape, axes));
}

/**
 * The value a clipping activation's (Relu, Clip) input gradient reads its mask from: its input x,
 * or its output y, which is positive / inside the bounds exactly where x is
 * (GradFormulations.activationMask).
 */
export function activationMaskSource(ctx: GradContext): string {
  return ctx.formulations.activationMask === 'output' ? ctx.node.outputs[0]! : ctx.node.inputs[0]!;
}
