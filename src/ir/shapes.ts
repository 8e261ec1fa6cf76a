/**
 * Static shapes of a graph's values. They are found by probing (`runtime/probe.ts` runs the
 * graph built here once on zeros), which is exact for every op onnxruntime runs.
 */
import { Graph, type Model, type TensorType } from './graph.js';

export interface ValueShape {
  dims: number[];
  elemType: number;
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

/** The model with every value a node produces made a graph output (in node order). */
export function probeModel(model: Model): Model {
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
  return { ...model, graph: probe };
}
