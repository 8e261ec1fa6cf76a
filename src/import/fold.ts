/**
 * Constant folding by evaluation: the constant sub-graph (nodes whose inputs are all constants,
 * plus Shape of values whose shape the probe knows) is cut out into a small model, run in
 * onnxruntime, and its results replace the nodes as initializers. Exact for every op onnxruntime runs.
 *
 * Shape values depend on the batch size. The sub-graph is evaluated at two batch sizes; a result
 * that differs is batch-dependent: a Reshape target gets the batch entry rewritten to 0 (copy the
 * input's dimension) or -1, anything else keeps computing at run time.
 */
import { Graph, topologicalOrder, type Model, type Node } from '../ir/graph.js';
import { DataType } from '../ir/types.js';
import type { ValueShape } from '../ir/shapes.js';
import { int64Tensor, toNumbers, type TensorData } from '../ir/tensor.js';
import { evaluateOnZeros } from '../runtime/probe.js';
import type { NormaliseReport } from './normalize.js';

/** Ops never folded (randomness, or no value to fold). */
const NEVER_FOLD = new Set(['Dropout', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

function sameBytes(a: TensorData, b: TensorData): boolean {
  if (a.dataType !== b.dataType || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  if (a.raw.length !== b.raw.length) return false;
  for (let i = 0; i < a.raw.length; i++) if (a.raw[i] !== b.raw[i]) return false;
  return true;
}

/** Nodes that can be evaluated without the image: returns them in topological order. */
export function constantNodes(g: Graph): Node[] {
  const known = new Set<string>(g.initializers.keys());
  const out: Node[] = [];
  for (const n of topologicalOrder(g.nodes, new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]))) {
    if (NEVER_FOLD.has(n.opType) || n.domain) continue;
    const ok = n.opType === 'Shape' || (n.inputs.some(Boolean) && n.inputs.every((i) => !i || known.has(i)));
    if (!ok) continue;
    out.push(n);
    for (const o of n.outputs) if (o) known.add(o);
  }
  return out;
}

/**
 * Folds the constant sub-graph in place. `shapes1`/`shapes2` are probe results at two batch
 * sizes (the second may be absent when the batch is fixed). Returns the number of nodes removed.
 */
export async function foldConstants(
  model: Model,
  shapes1: Map<string, ValueShape>,
  shapes2: Map<string, ValueShape> | undefined,
  report: NormaliseReport,
): Promise<number> {
  const g = model.graph;
  const fold = constantNodes(g);
  if (!fold.length) return 0;
  const foldSet = new Set(fold);
  const foldOutputs = new Set<string>();
  for (const n of fold) for (const o of n.outputs) if (o) foldOutputs.add(o);

  // The sub-model: Shape nodes read real tensors, fed as zeros of the probed shape.
  const sub = new Graph();
  sub.name = 'fold';
  sub.nodes = fold;
  const shapeInputs = [...new Set(fold.filter((n) => n.opType === 'Shape').map((n) => n.inputs[0]!))];
  for (const s of shapeInputs) sub.inputs.push({ name: s, type: { kind: 'tensor', elemType: shapes1.get(s)?.elemType ?? DataType.FLOAT } });
  for (const n of fold) for (const i of n.inputs) if (i && g.initializers.has(i)) sub.initializers.set(i, g.initializers.get(i)!);
  const needed = new Set<string>(g.outputs.map((o) => o.name));
  for (const n of g.nodes) if (!foldSet.has(n)) for (const i of n.inputs) if (i && foldOutputs.has(i)) needed.add(i);
  sub.outputs = [...needed].filter((v) => foldOutputs.has(v)).map((name) => ({ name }));
  if (!sub.outputs.length) return 0;

  const inputsFor = (shapes: Map<string, ValueShape>) => {
    const inputs = new Map<string, ValueShape>();
    for (const s of shapeInputs) {
      const sh = shapes.get(s);
      if (!sh) throw new Error(`constant folding: no probed shape for '${s}'`);
      inputs.set(s, sh);
    }
    return inputs;
  };
  const subModel: Model = { ...model, graph: sub };
  const r1 = await evaluateOnZeros(subModel, inputsFor(shapes1));
  const r2 = shapeInputs.length && shapes2 ? await evaluateOnZeros(subModel, inputsFor(shapes2)) : r1;

  const constant = new Map<string, TensorData>();
  const batchDependent = new Set<string>();
  for (const [k, t1] of r1) {
    if (sameBytes(t1, r2.get(k)!)) constant.set(k, t1);
    else batchDependent.add(k);
  }

  // Reshape targets that depend on the batch: rewrite the batch entry to 0 (copy) or -1 (infer).
  let patched = 0;
  for (const n of g.nodes) {
    if (foldSet.has(n) || n.opType !== 'Reshape' || !n.inputs[1] || !batchDependent.has(n.inputs[1])) continue;
    const v1 = toNumbers(r1.get(n.inputs[1])!);
    const v2 = toNumbers(r2.get(n.inputs[1])!);
    const x1 = shapes1.get(n.inputs[0]!)?.dims;
    const x2 = shapes2?.get(n.inputs[0]!)?.dims;
    const diff = v1.map((_, i) => i).filter((i) => v1[i] !== v2[i]);
    if (diff.length !== 1 || !x1 || !x2) continue;
    const i = diff[0]!;
    const v = [...v1];
    if (i < x1.length && v1[i] === x1[i] && v2[i] === x2[i] && (n.attrs.allowzero?.type !== 'int' || n.attrs.allowzero.value === 0)) v[i] = 0;
    else if (!v1.includes(-1)) v[i] = -1;
    else continue;
    let name = `${n.inputs[1]}_batchfree`;
    for (let k = 1; g.initializers.has(name); k++) name = `${n.inputs[1]}_batchfree${k}`;
    g.initializers.set(name, int64Tensor(name, [v.length], v));
    n.inputs[1] = name;
    patched++;
  }

  // Nodes to keep: producers of batch-dependent values still read by the rest of the graph, and their batch-dependent inputs.
  const producer = new Map<string, Node>();
  for (const n of fold) for (const o of n.outputs) if (o) producer.set(o, n);
  const keep = new Set<Node>();
  const stack: string[] = [];
  for (const n of g.nodes) if (!foldSet.has(n)) for (const i of n.inputs) if (i && batchDependent.has(i)) stack.push(i);
  for (const o of g.outputs) if (batchDependent.has(o.name)) stack.push(o.name);
  while (stack.length) {
    const v = stack.pop()!;
    const p = producer.get(v);
    if (!p || keep.has(p)) continue;
    keep.add(p);
    for (const i of p.inputs) if (i && foldOutputs.has(i) && !constant.has(i)) stack.push(i);
    // Inputs of kept nodes that are folded constants but not in the sub-model outputs: keep their producers too.
    for (const i of p.inputs) if (i && foldOutputs.has(i) && !r1.has(i)) stack.push(i);
  }
  for (const [k, t] of constant) {
    const p = producer.get(k)!;
    if (!keep.has(p)) g.initializers.set(k, t);
  }
  const before = g.nodes.length;
  g.nodes = g.nodes.filter((n) => !foldSet.has(n) || keep.has(n));
  const removed = before - g.nodes.length;
  if (removed) report.notes.push(`${removed} constant/shape node(s) folded into initializers`);
  if (patched) report.notes.push(`${patched} batch-dependent Reshape target(s) rewritten to keep the batch dynamic`);
  if (keep.size) report.notes.push(`${keep.size} shape node(s) depend on the batch size and stay in the graph`);
  return removed;
}
