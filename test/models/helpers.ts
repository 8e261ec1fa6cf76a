/** Shared helpers for the model tests: running a model in onnxruntime-node. */
import * as ort from 'onnxruntime-node';
import type { Model } from '../../src/ir/graph.js';
import { decodeModel, encodeModel } from '../../src/onnx/io.js';

export async function runLogits(model: Model, input: Float32Array, size: number): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(encodeModel(model));
  try {
    const batch = input.length / (3 * size * size);
    const out = await session.run({ input: new ort.Tensor('float32', input, [batch, 3, size, size]) });
    const logits = out.logits!;
    return { data: logits.data as Float32Array, dims: logits.dims };
  } finally {
    await session.release();
  }
}

/** A fixed pseudo-random input batch. */
export function testInput(batch: number, size: number): Float32Array {
  const x = new Float32Array(batch * 3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.7311) + 0.5 * Math.cos(i * 0.1234);
  return x;
}

export function cloneModel(m: Model): Model {
  return decodeModel(encodeModel(m));
}

/** max |a − b| / max |b|. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s === 0 ? d : d / s;
}
