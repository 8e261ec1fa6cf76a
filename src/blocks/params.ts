/**
 * Flat parameter layout: all trainable tensors of a block live in one
 * Float32Array (and so do the AdamW moments). The graphs take the flat vector
 * as one input and slice it into tensors; the gradients are flattened and
 * concatenated in the same order.
 */
import type { GraphBuilder } from '../ir/builder.js';
import { numElements } from '../ir/tensor.js';

export interface ParamEntry {
  /** Original name (initializer name in the source model, or head param name). */
  name: string;
  dims: number[];
  offset: number;
  size: number;
}

export class ParamLayout {
  readonly entries: ParamEntry[] = [];
  total = 0;

  add(name: string, dims: number[]): ParamEntry {
    const e = { name, dims: [...dims], offset: this.total, size: numElements(dims) };
    this.entries.push(e);
    this.total += e.size;
    return e;
  }

  get(name: string): ParamEntry {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new Error(`no parameter '${name}' in layout`);
    return e;
  }

  /** Fills a flat vector from per-tensor values. */
  pack(values: (name: string) => Float32Array, into = new Float32Array(this.total)): Float32Array {
    for (const e of this.entries) into.set(values(e.name), e.offset);
    return into;
  }

  view(flat: Float32Array, name: string): Float32Array {
    const e = this.get(name);
    return flat.subarray(e.offset, e.offset + e.size);
  }
}

/** Slices the flat input into one value per parameter; returns name → value. */
export function appendUnpack(b: GraphBuilder, flat: string, layout: ParamLayout): Map<string, string> {
  const out = new Map<string, string>();
  const axis0 = b.constInt64([0], [1], 'axis0');
  for (const e of layout.entries) {
    const start = b.constInt64([e.offset], [1], 'offset');
    const end = b.constInt64([e.offset + e.size], [1], 'offset_end');
    const slice = b.op('Slice', [flat, start, end, axis0], {}, `unpack/${e.name}/Slice`);
    out.set(e.name, b.op('Reshape', [slice, b.constInt64(e.dims, [e.dims.length], 'param_shape')], {}, `unpack/${e.name}`));
  }
  return out;
}

/** Flattens and concatenates per-parameter gradients into one vector in layout order. */
export function appendPack(b: GraphBuilder, grads: Map<string, string>, layout: ParamLayout, zeroIfMissing = true): string {
  const minus1 = b.constInt64([-1], [1], 'flat_shape');
  const parts = layout.entries.map((e) => {
    const g = grads.get(e.name);
    if (g) return b.op('Reshape', [g, minus1], {}, `pack/${e.name}`);
    if (!zeroIfMissing) throw new Error(`no gradient for parameter '${e.name}'`);
    return b.constFloat(new Float32Array(e.size), [e.size], 'zero_grad');
  });
  return parts.length === 1 ? parts[0]! : b.op('Concat', parts, { axis: 0 }, 'pack/Concat');
}
