/**
 * importModel: turns an exported classifier (PyTorch legacy or dynamo export, eval or training
 * form; TFLite-derived graphs) into the normalised graph every later stage works on, with exact
 * shapes and the classifier head identified.
 */
import { opsetVersion, type Model, type Node, type TensorType } from '../ir/graph.js';
import type { ValueShape } from '../ir/shapes.js';
import { probeShapes } from '../runtime/probe.js';
import { cloneModel, checkOps, normaliseGraph, bypass, removeDeadCode, type NormaliseReport } from './normalize.js';
import { foldConstants } from './fold.js';
import { findHead, type HeadInfo, type HeadOptions } from './head.js';
import { ImportError } from './errors.js';
import { countElements, nodeBuffers, nodeParams } from './ops.js';
import { checkMemory } from '../util/limits.js';

export { UnsupportedOpError, ImportError } from './errors.js';
export { SUPPORTED_OPS, SHAPE_OPS, nodeParams, nodeBuffers, paramSlots, countElements } from './ops.js';
export type { HeadInfo, HeadOptions } from './head.js';

export interface ImportOptions extends HeadOptions {
  /** Input height and width; required when the model's are symbolic, else overrides them. */
  imageSize?: [number, number];
}

export interface ImportedModel {
  /** The normalised model (a copy: the caller's model is not modified). Nodes are in topological order. */
  model: Model;
  /** The image input's name, as in the original file. */
  input: string;
  /** Input dims used for shapes, batch 1: [1, C, H, W]. */
  inputDims: number[];
  /** True when the batch dimension is symbolic (the model runs at any batch size). */
  dynamicBatch: boolean;
  /** Shapes of every value at batch 1 (dims[0] = 1 for batch-carrying values). */
  shapes: Map<string, ValueShape>;
  opset: number;
  /** Output of the feature extractor = input of the head = output of the last SFF block. */
  feature: string;
  /** Nodes computing `feature` from the input, in topological order. */
  bodyNodes: Node[];
  head: HeadInfo;
  /** Trainable parameters of the whole graph (after untying shared initializers) and their element count. */
  params: string[];
  paramCount: number;
  /** BatchNorm running statistics (not trained by the optimiser). */
  buffers: string[];
  /** BatchNormalization nodes present (false: folded into the convs, or never there). */
  hasBatchNorm: boolean;
  /** Op type → count in the normalised graph. */
  opCounts: Record<string, number>;
  /** What the normaliser changed, in words. */
  notes: string[];
}

function inputType(model: Model): { name: string; type: TensorType } {
  const feeds = model.graph.feedInputs();
  if (feeds.length !== 1)
    throw new ImportError(`the model has ${feeds.length} inputs (${feeds.map((f) => f.name).join(', ') || 'none'}); an image classifier with one NCHW input is needed`);
  const f = feeds[0]!;
  if (f.type?.kind !== 'tensor' || !f.type.shape || f.type.shape.length !== 4)
    throw new ImportError(`input '${f.name}' should be a 4-D NCHW image tensor, found ${f.type?.kind === 'tensor' ? `shape [${f.type.shape?.join(', ') ?? '?'}]` : 'no tensor type'}`);
  return { name: f.name, type: f.type };
}

/**
 * Imports a model: normalises it, folds constants (running the constant sub-graph in
 * onnxruntime), probes every shape and finds the head. Throws UnsupportedOpError (every
 * unsupported node named) or ImportError; never modifies `source`.
 */
export async function importModel(source: Model, opts: ImportOptions = {}): Promise<ImportedModel> {
  const model = cloneModel(source);
  const g = model.graph;
  checkOps(g);
  const report: NormaliseReport = { notes: [] };
  normaliseGraph(model, report);

  const { name: input, type } = inputType(model);
  const shape = [...type.shape!];
  const [h, w] = opts.imageSize ?? [shape[2], shape[3]];
  if (typeof h !== 'number' || typeof w !== 'number' || !(h > 0) || !(w > 0))
    throw new ImportError(`input '${input}' has symbolic height/width ([${shape.join(', ')}]); give the image size (--image-size H,W)`);
  if (typeof shape[1] !== 'number' || !(shape[1] > 0)) throw new ImportError(`input '${input}' has no fixed channel count ([${shape.join(', ')}])`);
  if (opts.imageSize && (shape[2] !== h || shape[3] !== w)) {
    if (typeof shape[2] === 'number') report.notes.push(`input size changed from ${shape[2]}x${shape[3]} to ${h}x${w}`);
    shape[2] = h;
    shape[3] = w;
  }
  const fixedBatch = typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : undefined;
  const setBatch = (b: number | string) => {
    shape[0] = b;
    type.shape = [...shape];
    for (const o of g.outputs)
      if (o.type?.kind === 'tensor' && o.type.shape?.length) o.type = { ...o.type, shape: [b, ...o.type.shape.slice(1)] };
  };
  setBatch(fixedBatch !== undefined ? 'N' : shape[0]!);
  g.valueInfo.clear(); // probed shapes replace whatever the exporter recorded
  const dims = (b: number) => ({ [input]: [b, shape[1] as number, h, w] });
  // Probing keeps every intermediate value of a batch of 2: a few hundred bytes of protobuf may
  // declare an input that no machine holds. Estimate (each value about the input's size) first.
  const inputBytes = 2 * (shape[1] as number) * h * w * 4;
  const values = g.nodes.reduce((a, n) => a + n.outputs.length, 0);
  checkMemory(
    inputBytes * Math.max(1, values),
    `input '${input}' [N, ${shape[1]}, ${h}, ${w}] (${values} intermediate values to probe)`,
    h * w > 1024 * 1024 ? 'Is the declared input size right? Give a smaller one with --image-size if the model allows it.' : 'Use a machine with more memory or a smaller input size.',
  );

  const probeBoth = async (): Promise<[Map<string, ValueShape>, Map<string, ValueShape> | undefined]> => {
    const s1 = await probeShapes(model, { inputDims: dims(1) });
    try {
      return [s1, await probeShapes(model, { inputDims: dims(2) })];
    } catch (e) {
      if (fixedBatch === undefined) throw e;
      return [s1, undefined];
    }
  };
  let [s1, s2] = await probeBoth().catch((e: Error) => {
    throw new ImportError(`onnxruntime cannot run the normalised graph at input [1, ${shape[1]}, ${h}, ${w}]: ${e.message}`);
  });
  if (fixedBatch !== undefined && !s2) {
    setBatch(fixedBatch);
    report.notes.push(`the batch size is fixed at ${fixedBatch} by the graph and could not be made dynamic`);
  } else if (fixedBatch !== undefined) report.notes.push(`fixed batch ${fixedBatch} of input '${input}' made dynamic`);

  if (await foldConstants(model, s1, s2, report)) {
    removeDeadCode(g);
    [s1, s2] = await probeBoth();
    if (fixedBatch !== undefined && !s2 && shape[0] === 'N') {
      setBatch(fixedBatch);
      report.notes.push(`the batch size is fixed at ${fixedBatch} by the graph and could not be made dynamic`);
      [s1, s2] = await probeBoth();
    }
  }

  // No-op reshapes (same shape in and out at both batch sizes).
  let noops = 0;
  for (const n of [...g.nodes]) {
    if (!['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze'].includes(n.opType)) continue;
    const x = n.inputs[0]!;
    const y = n.outputs[0]!;
    const same = (s?: Map<string, ValueShape>) => !s || (s.get(x)?.dims.join(',') === s.get(y)?.dims.join(',') && s.get(x) !== undefined);
    if (same(s1) && same(s2) && bypass(g, n, x, y)) {
      noops++;
      if (!g.outputs.some((o) => o.name === y)) s1.delete(y);
    }
  }
  if (noops) {
    report.notes.push(`${noops} no-op reshape(s) removed`);
    removeDeadCode(g);
  }
  g.topoSort();

  const head = findHead(g, input, s1, opts);
  const headSet = new Set(head.nodes);
  const bodyNodes = g.nodes.filter((n) => !headSet.has(n));
  const params = nodeParams(g, g.nodes);
  const opCounts: Record<string, number> = {};
  for (const n of g.nodes) opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
  return {
    model,
    input,
    inputDims: dims(1)[input]!,
    dynamicBatch: typeof type.shape![0] !== 'number',
    shapes: s1,
    opset: opsetVersion(model),
    feature: head.feature,
    bodyNodes,
    head,
    params,
    paramCount: countElements(g, params),
    buffers: nodeBuffers(g, g.nodes),
    hasBatchNorm: !!opCounts.BatchNormalization,
    opCounts,
    notes: report.notes,
  };
}
