/**
 * Graphs run once on zero inputs: exact shape and type inference (every intermediate value made
 * an output), and evaluation of constant sub-graphs for folding. Exact for any op onnxruntime
 * runs, which is every op the importer accepts.
 */
import type { Model } from '../ir/graph.js';
import { DataType } from '../ir/types.js';
import { concreteInputDims, probeModel, type ValueShape } from '../ir/shapes.js';
import type { TensorData } from '../ir/tensor.js';
import { createProbeSession } from './session.js';
import { elemTypeOf, toTensorData, zerosTensor, type Tensor } from './tensors.js';

function zeroFeeds(inputs: Map<string, ValueShape>): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const [name, s] of inputs) feeds[name] = zerosTensor(s.elemType, s.dims);
  return feeds;
}

async function runOnce<T>(model: Model, inputs: Map<string, ValueShape>, read: (name: string, t: Tensor) => T): Promise<Map<string, T>> {
  const session = await createProbeSession(model);
  try {
    const out = await session.run(zeroFeeds(inputs));
    return new Map(Object.entries(out).map(([k, v]) => [k, read(k, v)]));
  } finally {
    await session.release();
  }
}

/** Runs `model` once with zero inputs of the given shapes and returns its outputs' values. */
export function evaluateOnZeros(model: Model, inputs: Map<string, ValueShape>): Promise<Map<string, TensorData>> {
  return runOnce(model, inputs, toTensorData);
}

/**
 * Runs `model` once with zero inputs and returns the shape of every value.
 * `inputDims` overrides the shapes of named inputs (e.g. a fixed image size).
 */
export async function probeShapes(model: Model, opts: { batch?: number; inputDims?: Record<string, number[]> } = {}): Promise<Map<string, ValueShape>> {
  const batch = opts.batch ?? 1;
  const g = model.graph;
  const inputs = new Map<string, ValueShape>();
  for (const inp of g.feedInputs()) {
    const t = inp.type?.kind === 'tensor' ? inp.type : undefined;
    inputs.set(inp.name, { dims: concreteInputDims(t, inp.name, batch, opts.inputDims?.[inp.name]), elemType: t?.elemType ?? DataType.FLOAT });
  }
  const result = new Map<string, ValueShape>(inputs);
  for (const [k, t] of g.initializers) result.set(k, { dims: [...t.dims], elemType: t.dataType });
  const outputs = await runOnce(probeModel(model), inputs, (_, v) => ({ dims: [...v.dims], elemType: elemTypeOf(v) }));
  for (const [k, v] of outputs) result.set(k, v);
  return result;
}
