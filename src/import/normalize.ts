/**
 * Structural normalisation of an imported graph (no onnxruntime needed):
 * Constant nodes → initializers, Identity/Dropout removed, training-form BatchNormalization
 * turned into a plain inference BN, shared parameter initializers untied, dead nodes dropped.
 */
import { Graph, opsetVersion, type Model, type Node } from '../ir/graph.js';
import { attrFloat, attrFloats, attrInt, attrInts, attrTensor } from '../ir/attrs.js';
import { cloneTensor, floatTensor, int64Tensor, type TensorData } from '../ir/tensor.js';
import { DataType } from '../ir/types.js';
import { ImportError, UnsupportedOpError } from './errors.js';
import { SHAPE_OPS, SUPPORTED_OPS, paramSlots } from './ops.js';

/** A copy of the model whose graph can be edited without touching the original (tensor bytes are shared, never mutated). */
export function cloneModel(model: Model): Model {
  const g = model.graph;
  const graph = new Graph();
  graph.name = g.name;
  graph.docString = g.docString;
  graph.extra = { ...g.extra };
  graph.nodes = g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } }));
  graph.initializers = new Map(g.initializers);
  graph.inputs = g.inputs.map((v) => ({ ...v }));
  graph.outputs = g.outputs.map((v) => ({ ...v }));
  graph.valueInfo = new Map(g.valueInfo);
  return { ...model, metadata: model.metadata.map((m) => ({ ...m })), opsetImports: [...model.opsetImports], graph };
}

/** Throws UnsupportedOpError naming every node whose op has no rule here. */
export function checkOps(graph: Graph): void {
  const bad = graph.nodes.filter(
    (n) => (n.domain !== '' && n.domain !== 'ai.onnx') || !(SUPPORTED_OPS.has(n.opType) || SHAPE_OPS.has(n.opType)),
  );
  if (bad.length) throw new UnsupportedOpError(bad);
}

/** Replaces every read of `from` by `to` (node inputs and graph outputs are handled by the caller). */
export function replaceUses(graph: Graph, from: string, to: string): void {
  for (const n of graph.nodes) for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
}

function isGraphOutput(graph: Graph, name: string): boolean {
  return graph.outputs.some((o) => o.name === name);
}
function isGraphInput(graph: Graph, name: string): boolean {
  return graph.inputs.some((o) => o.name === name);
}

/**
 * Removes a node that passes input `src` through unchanged as output `dst`.
 * Returns false (node kept) when both names must survive (graph input straight to graph output).
 */
export function bypass(graph: Graph, node: Node, src: string, dst: string): boolean {
  if (isGraphOutput(graph, dst)) {
    const init = graph.initializers.get(src);
    if (init) {
      graph.initializers.set(dst, cloneTensor(init, dst));
    } else {
      if (isGraphInput(graph, src) || isGraphOutput(graph, src)) return false;
      // Rename the producer's output to the graph-output name.
      for (const n of graph.nodes) for (let i = 0; i < n.outputs.length; i++) if (n.outputs[i] === src) n.outputs[i] = dst;
      replaceUses(graph, src, dst);
    }
  } else {
    const init = graph.initializers.get(src);
    // An Identity of an initializer gives its consumers their own copy (untied), under the Identity's name.
    if (init && init.dataType === DataType.FLOAT && node.opType === 'Identity') graph.initializers.set(dst, cloneTensor(init, dst));
    else replaceUses(graph, dst, src);
  }
  graph.nodes = graph.nodes.filter((n) => n !== node);
  return true;
}

/** The value of a Constant node as a tensor named `name`. */
function constantValue(node: Node, name: string): TensorData {
  const t = attrTensor(node, 'value');
  if (t) return cloneTensor(t, name);
  if (node.attrs.value_float) return floatTensor(name, [], [attrFloat(node, 'value_float')]);
  if (node.attrs.value_floats) {
    const v = attrFloats(node, 'value_floats');
    return floatTensor(name, [v.length], v);
  }
  if (node.attrs.value_int) return int64Tensor(name, [], [attrInt(node, 'value_int')]);
  if (node.attrs.value_ints) {
    const v = attrInts(node, 'value_ints');
    return int64Tensor(name, [v.length], v);
  }
  throw new UnsupportedOpError([node], 'holds a kind of constant (sparse or string) that');
}

export interface NormaliseReport {
  notes: string[];
}

/** Applies every structural rewrite in place. */
export function normaliseGraph(model: Model, report: NormaliseReport): void {
  const g = model.graph;
  const opset = opsetVersion(model);
  // Initializers listed as graph inputs (IR < 4 style) are constants, not feeds.
  g.inputs = g.inputs.filter((i) => !g.initializers.has(i.name));

  // 1. Constant nodes → initializers.
  let constants = 0;
  for (const n of [...g.nodes]) {
    if (n.opType !== 'Constant') continue;
    const out = n.outputs[0]!;
    g.initializers.set(out, constantValue(n, out));
    g.nodes = g.nodes.filter((x) => x !== n);
    constants++;
  }
  if (constants) report.notes.push(`${constants} Constant node(s) turned into initializers`);

  // 2. Training-form BatchNormalization → plain inference BN using the running statistics.
  let bnTrain = 0;
  for (const n of g.nodes) {
    if (n.opType !== 'BatchNormalization') continue;
    for (const s of [1, 2, 3, 4])
      if (!n.inputs[s] || !g.initializers.has(n.inputs[s]!))
        throw new ImportError(`BatchNormalization '${n.name}': input ${s} ('${n.inputs[s] ?? ''}') is not a constant; only BN with stored scale/bias/running statistics is supported`);
    const training = (n.attrs.training_mode && attrInt(n, 'training_mode', 0) === 1) || n.outputs.filter(Boolean).length > 1;
    if (!training) continue;
    const consumers = g.consumers();
    const used = n.outputs.slice(1).filter((o) => o && (consumers.has(o) || isGraphOutput(g, o)));
    if (used.length) throw new ImportError(`BatchNormalization '${n.name}': its running-statistics output '${used[0]}' is used by the graph; export in eval form or drop that use`);
    n.outputs = [n.outputs[0]!];
    delete n.attrs.training_mode;
    if (opset < 9) delete n.attrs.spatial;
    bnTrain++;
  }
  if (bnTrain) report.notes.push(`${bnTrain} training-mode BatchNormalization node(s) turned into inference BN on their running statistics (SFF trains them in training mode itself)`);

  // 3. Identity and Dropout are pass-throughs for SFF (the training graphs add their own randomness if any).
  let dropouts = 0;
  let identities = 0;
  for (const n of [...g.nodes]) {
    if (n.opType === 'Identity') {
      if (bypass(g, n, n.inputs[0]!, n.outputs[0]!)) identities++;
    } else if (n.opType === 'Dropout') {
      const consumers = g.consumers();
      const mask = n.outputs[1];
      if (mask && (consumers.has(mask) || isGraphOutput(g, mask))) throw new ImportError(`Dropout '${n.name}': its mask output '${mask}' is used; cannot treat it as identity`);
      if (bypass(g, n, n.inputs[0]!, n.outputs[0]!)) dropouts++;
    }
  }
  if (identities) report.notes.push(`${identities} Identity node(s) removed`);
  if (dropouts) report.notes.push(`${dropouts} Dropout node(s) treated as identity (inference behaviour)`);

  untieParameters(g, report);
  removeDeadCode(g);
}

/** Gives every parameter slot its own initializer: exporters share equal-valued tensors (e.g. zero biases) between layers. */
export function untieParameters(g: Graph, report: NormaliseReport): void {
  const producers = g.producers();
  const seen = new Set<string>();
  let untied = 0;
  for (const n of g.nodes)
    for (const s of paramSlots(n, producers)) {
      const name = n.inputs[s];
      if (!name) continue;
      const t = g.initializers.get(name);
      if (!t || t.dataType !== DataType.FLOAT) continue;
      if (!seen.has(name)) {
        seen.add(name);
        continue;
      }
      let k = 1;
      while (g.initializers.has(`${name}__${k}`)) k++;
      const copy = `${name}__${k}`;
      g.initializers.set(copy, cloneTensor(t, copy));
      n.inputs[s] = copy;
      seen.add(copy);
      untied++;
    }
  if (untied) report.notes.push(`${untied} shared parameter use(s) untied into separate initializers`);
}

/** Drops nodes that no graph output needs, then initializers nobody reads. */
export function removeDeadCode(g: Graph): void {
  const producers = g.producers();
  const live = new Set<Node>();
  const needed = g.outputs.map((o) => o.name);
  const seen = new Set<string>();
  while (needed.length) {
    const v = needed.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = producers.get(v);
    if (!p || live.has(p)) continue;
    live.add(p);
    for (const i of p.inputs) if (i) needed.push(i);
  }
  g.nodes = g.nodes.filter((n) => live.has(n));
  const used = new Set<string>(g.outputs.map((o) => o.name));
  for (const n of g.nodes) for (const i of n.inputs) if (i) used.add(i);
  for (const k of [...g.initializers.keys()]) if (!used.has(k)) g.initializers.delete(k);
  // Value infos of values that no longer exist would only confuse later passes.
  const names = g.allNames();
  for (const k of [...g.valueInfo.keys()]) if (!names.has(k)) g.valueInfo.delete(k);
}
