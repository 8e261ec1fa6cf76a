/** Runs a model in onnxruntime (no graph optimisation, so results are comparable bit for bit). */
import ort from 'onnxruntime-node';
import type { Model } from '../../src/ir/graph.js';
import { encodeModel } from '../../src/onnx/io.js';
import { rng } from './toy.js';

export async function runBytes(bytes: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = typeof bytes === 'string'
    ? await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' })
    : await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

export function runModel(model: Model, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  return runBytes(encodeModel(model), feeds);
}

export function randomImage(dims: number[], seed = 3): ort.Tensor {
  const r = rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return new ort.Tensor('float32', Float32Array.from({ length: n }, () => r() * 2), dims);
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function bitEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
