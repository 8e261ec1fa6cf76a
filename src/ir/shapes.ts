/**
 * Exact shape and type inference by probing: every intermediate value is made a
 * graph output and the graph is run once on zeros in onnxruntime. Exact for any
 * op onnxruntime runs, which is every op the importer accepts.
 */
import ort from 'onnxruntime-node';
import { Graph, type Model, type TensorType } from './graph.js';
import { encodeModel } from '../onnx/io.js';
import { DataType } from '../onnx/schema.js';
import { numElements } from './tensor.js';

export interface ValueShape {
  dims: number[];
  elemType: number;
}

const ORT_TYPES: Record<string, number> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, int64: DataType.INT64, int32: DataType.INT32, uint8: DataType.UINT8,
  int8: DataType.INT8, bool: DataType.BOOL, float16: DataType.FLOAT16, uint16: DataType.UINT16, int16: DataType.INT16,
};

export function zerosFeed(elemType: number, dims: number[]): ort.Tensor {
  const n = numElements(dims);
  switch (elemType) {
    case DataType.FLOAT:
      return new ort.Tensor('float32', new Float32Array(n), dims);
    case DataType.INT64:
      return new ort.Tensor('int64', new BigInt64Array(n), dims);
    case DataType.INT32:
      return new ort.Tensor('int32', new Int32Array(n), dims);
    case DataType.UINT8:
      return new ort.Tensor('uint8', new Uint8Array(n), dims);
    case DataType.BOOL:
      return new ort.Tensor('bool', new Uint8Array(n), dims);
    default:
      throw new Error(`cannot make a probe input of element type ${elemType}`);
  }
}

/** Concrete dims for a graph input: symbolic/unknown dims take `batch` (first) or must be given. */
export function concreteInputDims(t: TensorType | undefined, name: string, batch: number, override?: number[]): number[] {
  if (override) return override;
  if (!t?.shape) throw new Error(`input '${name}' has no shape; give one explicitly`);
  return t.shape.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (i === 0) return batch;
    throw new Error(`input '${name}' has a symbolic dimension ${i} ('${d}'); give the input size explicitly (e.g. --image-size)`);
  });
}

/**
 * Runs `model` once with zero inputs and returns the shape of every value.
 * `inputDims` overrides the shapes of named inputs (e.g. a fixed image size).
 */
export async function probeShapes(model: Model, opts: { batch?: number; inputDims?: Record<string, number[]> } = {}): Promise<Map<string, ValueShape>> {
  const batch = opts.batch ?? 1;
  const g = model.graph;
  const probe = new Graph();
  Object.assign(probe, { ...g, outputs: [] as typeof g.outputs, valueInfo: new Map() });
  const seen = new Set<string>();
  for (const n of g.nodes)
    for (const o of n.outputs)
      if (o && !seen.has(o)) {
        seen.add(o);
        probe.outputs.push({ name: o });
      }
  const feeds: Record<string, ort.Tensor> = {};
  const result = new Map<string, ValueShape>();
  for (const inp of g.feedInputs()) {
    const t = inp.type?.kind === 'tensor' ? inp.type : undefined;
    const dims = concreteInputDims(t, inp.name, batch, opts.inputDims?.[inp.name]);
    feeds[inp.name] = zerosFeed(t?.elemType ?? DataType.FLOAT, dims);
    result.set(inp.name, { dims, elemType: t?.elemType ?? DataType.FLOAT });
  }
  for (const [k, t] of g.initializers) result.set(k, { dims: [...t.dims], elemType: t.dataType });
  const session = await ort.InferenceSession.create(encodeModel({ ...model, graph: probe }), { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run(feeds);
    for (const [k, v] of Object.entries(out)) result.set(k, { dims: [...v.dims], elemType: ORT_TYPES[v.type] ?? DataType.UNDEFINED });
  } finally {
    await session.release();
  }
  return result;
}
