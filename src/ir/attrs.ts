/** Reading node attributes with defaults, and writing them from plain values. */
import type { Attr, Graph, Node } from './graph.js';
import type { TensorData } from './tensor.js';

function fail(node: Node, name: string, want: string, got?: Attr): never {
  throw new Error(`node '${node.name}' (${node.opType}): attribute '${name}' should be ${want}${got ? `, found ${got.type}` : ' and is missing'}`);
}

export function attrInt(node: Node, name: string, dflt?: number): number {
  const a = node.attrs[name];
  if (!a) return dflt !== undefined ? dflt : fail(node, name, 'an int');
  if (a.type === 'int') return a.value;
  return fail(node, name, 'an int', a);
}

export function attrFloat(node: Node, name: string, dflt?: number): number {
  const a = node.attrs[name];
  if (!a) return dflt !== undefined ? dflt : fail(node, name, 'a float');
  if (a.type === 'float' || a.type === 'int') return a.value;
  return fail(node, name, 'a float', a);
}

export function attrInts(node: Node, name: string, dflt?: number[]): number[] {
  const a = node.attrs[name];
  if (!a) return dflt !== undefined ? dflt : fail(node, name, 'a list of ints');
  if (a.type === 'ints') return a.value;
  return fail(node, name, 'a list of ints', a);
}

export function attrFloats(node: Node, name: string, dflt?: number[]): number[] {
  const a = node.attrs[name];
  if (!a) return dflt !== undefined ? dflt : fail(node, name, 'a list of floats');
  if (a.type === 'floats') return a.value;
  return fail(node, name, 'a list of floats', a);
}

export function attrString(node: Node, name: string, dflt?: string): string {
  const a = node.attrs[name];
  if (!a) return dflt !== undefined ? dflt : fail(node, name, 'a string');
  if (a.type === 'string') return a.value;
  return fail(node, name, 'a string', a);
}

export function attrTensor(node: Node, name: string): TensorData | undefined {
  const a = node.attrs[name];
  return a?.type === 'tensor' ? a.value : undefined;
}

/** Marks a number as a float attribute even when it is whole (alpha: 1.0). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export class FloatsAttr {
  constructor(readonly value: number[]) {}
}
export const f = (v: number) => new FloatAttr(v);
export const fs = (v: number[]) => new FloatsAttr(v);

export type AttrValue = number | number[] | string | string[] | FloatAttr | FloatsAttr | TensorData | Graph | Attr;

/**
 * Plain values become attributes: integers → int(s), other numbers → float(s),
 * strings → string(s). Whole-number floats need `f()` / `fs()`.
 */
export function toAttr(v: AttrValue): Attr {
  if (v instanceof FloatAttr) return { type: 'float', value: v.value };
  if (v instanceof FloatsAttr) return { type: 'floats', value: v.value };
  if (typeof v === 'number') return Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return { type: 'strings', value: v as string[] };
    const nums = v as number[];
    return nums.every((x) => Number.isInteger(x)) ? { type: 'ints', value: nums } : { type: 'floats', value: nums };
  }
  if ('type' in v && typeof (v as Attr).type === 'string' && 'value' in v) return v as Attr;
  if ('raw' in v && 'dataType' in v) return { type: 'tensor', value: v as TensorData };
  return { type: 'graph', value: v as Graph };
}

export function toAttrs(values: Record<string, AttrValue | undefined>): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) out[k] = toAttr(v);
  return out;
}
