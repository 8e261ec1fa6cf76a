/**
 * From a model file (or a built-in architecture) to the blocks the trainer runs:
 * load → import/normalise → split into blocks → per-block constants and shapes.
 */
import { basename } from 'node:path';
import { loadModel } from '../onnx/io.js';
import { getMetadata, type Model, type Node } from '../ir/graph.js';
import { floatTensor, numElements, type TensorData } from '../ir/tensor.js';
import { mixSeed, Rng } from '../util/rng.js';
import { importModel, parseImageSize, type ImageSizeChoice, type ImportedModel, type SourceDtype } from '../import/index.js';
import { commonImageSize } from '../data/index.js';
import { pretrainedHeadBlock, splitIntoBlocksDetailed, type Block, type SplitMethod } from '../blocks/index.js';
import { createModel, isBuiltinModel, BUILTIN_MODELS } from '../models/index.js';
import type { TrainBlock } from '../blocks/block.js';

export interface PreparedModel {
  /** One line for logs: source, input, blocks. */
  description: string;
  /** Name for the default output folder. */
  shortName: string;
  inputName: string;
  /** Per-sample input dims [C, H, W]. */
  inputShape: number[];
  imageSize: [number, number];
  /** Why that size (printed in the run's log). */
  imageSizeChoice: ImageSizeChoice;
  /** The source's weight type; a float16 model trains in float32 and can be exported back with --export-dtype float16. */
  sourceDtype: SourceDtype;
  blocks: TrainBlock[];
  /**
   * The network's own head before its classifier (projection conv, pooling, penultimate
   * layer), runnable as a final SFF block after `blocks`; absent when the head has none.
   */
  headBlock?: TrainBlock;
  splitMethod: SplitMethod;
  /** Randomly initialised (built-in or `create`d): the paper's setting, LayerNorm in the chain by default. */
  fromScratch: boolean;
  /** Normalisation recorded in the model's metadata, as a --normalize string. */
  normalize?: string;
  imported: ImportedModel;
}

export interface PrepareModelOptions {
  /** auto | cuts | comma-separated cut tensors. */
  blocks?: string;
  /** --image-size: a number (square) or [H, W]. */
  imageSize?: number | [number, number];
  /** The training data: its common image size is the default for a graph with symbolic height/width. */
  dataPath?: string;
  /** Classes of a built-in model's (unused) classifier. */
  classes?: number;
}

/** `builtin:<kind>` or a path. */
export function loadModelSource(source: string, opts: PrepareModelOptions = {}): { model: Model; name: string } {
  if (source.startsWith('builtin:')) {
    const kind = source.slice('builtin:'.length);
    if (!isBuiltinModel(kind)) throw new Error(`unknown built-in model '${kind}': use builtin:${BUILTIN_MODELS.join(', builtin:')}`);
    const size = parseImageSize(opts.imageSize);
    if (size && size[0] !== size[1]) throw new Error(`built-in models are square: give --image-size as one number, got ${size.join(',')}`);
    return { model: createModel(kind, { ...(size ? { imageSize: size[0] } : {}), classes: opts.classes ?? 10 }), name: kind };
  }
  return { model: loadModel(source), name: basename(source).replace(/\.onnx$/i, '') };
}

export async function prepareModel(source: string, opts: PrepareModelOptions = {}): Promise<PreparedModel> {
  const { model, name } = loadModelSource(source, opts);
  const imageSize = parseImageSize(opts.imageSize);
  const imported = await importModel(model, {
    ...(imageSize ? { imageSize } : {}),
    ...(!imageSize && opts.dataPath && hasSymbolicSize(model) ? { dataImageSize: await commonImageSize(opts.dataPath).catch(() => undefined) } : {}),
  });
  const spec = !opts.blocks || opts.blocks === 'auto' || opts.blocks === 'cuts' ? (opts.blocks ?? 'auto') : opts.blocks.split(',').map((s) => s.trim());
  const split = splitIntoBlocksDetailed(imported, spec as 'auto' | 'cuts' | string[]);
  const inits = imported.model.graph.initializers;
  const dimsOf = (v: string) => {
    const s = imported.shapes.get(v);
    if (!s) throw new Error(`no shape known for '${v}'`);
    return s.dims.slice(1);
  };
  const toTrainBlock = (b: Block): TrainBlock => {
    const constants = new Map<string, TensorData>();
    for (const n of b.nodes) for (const i of n.inputs) if (inits.has(i)) constants.set(i, inits.get(i)!);
    return {
      index: b.index,
      name: b.name,
      input: b.input,
      output: b.output,
      nodes: b.nodes,
      constants,
      trainable: b.trainable,
      state: b.state,
      inputShape: dimsOf(b.input),
      outputShape: dimsOf(b.output),
    };
  };
  const blocks = split.blocks.map(toTrainBlock);
  const head = pretrainedHeadBlock(imported, blocks.length);
  const pre = getMetadata(model, 'sff.preprocess');
  const normalize = pre ? (({ mean, std }: { mean: number[]; std: number[] }) => `${mean.join(',')}/${std.join(',')}`)(JSON.parse(pre)) : undefined;
  const inputShape = imported.inputDims.slice(1);
  return {
    description: `${source} (${imported.opCounts ? Object.values(imported.opCounts).reduce((a, b) => a + b, 0) : '?'} nodes, ${imported.paramCount.toLocaleString('en-US')} params, input ${imported.input} [${inputShape.join('×')}], ${blocks.length} blocks by ${split.method}${imported.hasBatchNorm ? ', BatchNorm' : ''})`,
    shortName: name,
    inputName: imported.input,
    inputShape,
    imageSize: [inputShape[1]!, inputShape[2]!],
    imageSizeChoice: imported.imageSize,
    sourceDtype: imported.sourceDtype,
    blocks,
    ...(head ? { headBlock: toTrainBlock(head) } : {}),
    splitMethod: split.method,
    fromScratch: getMetadata(model, 'sff.model') !== undefined,
    ...(normalize ? { normalize } : {}),
    imported,
  };
}

/** True when the image input's height or width is symbolic (the importer then picks a size). */
function hasSymbolicSize(model: Model): boolean {
  const t = model.graph.feedInputs()[0]?.type;
  const s = t?.kind === 'tensor' ? t.shape : undefined;
  return !s || typeof s[2] !== 'number' || typeof s[3] !== 'number';
}

/**
 * The BP baseline's single block: the whole network up to its logits, with the
 * classifier replaced by a J-way one when the label set differs (the paper's BP baseline), and
 * the classifier's dropout (metadata `sff.dropout`) before it in training.
 */
export function bpBlock(pm: PreparedModel, classes: number, seed: number): TrainBlock {
  const im = pm.imported;
  const g = im.model.graph;
  const producers = g.producers();
  let logits = g.outputs[0]!.name;
  const last = producers.get(logits);
  if (last && (last.opType === 'Softmax' || last.opType === 'LogSoftmax')) logits = last.inputs[0]!;
  const keep = new Set<Node>();
  const visit = (v: string) => {
    const n = producers.get(v);
    if (!n || keep.has(n)) return;
    keep.add(n);
    n.inputs.forEach((i) => i && visit(i));
  };
  visit(logits);
  const nodes = g.nodes.filter((n) => keep.has(n)).map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } }));
  const constants = new Map<string, TensorData>();
  for (const n of nodes) for (const i of n.inputs) if (g.initializers.has(i)) constants.set(i, g.initializers.get(i)!);
  const clsNode = nodes.find((n) => n.name === im.head.classifier);
  if (clsNode && im.head.classes !== classes) replaceClassifier(clsNode, nodes, constants, classes, seed);
  const dropout = Number(getMetadata(im.model, 'sff.dropout') ?? 0);
  if (clsNode && dropout > 0) {
    const dropped = `${clsNode.inputs[0]}__dropout`;
    nodes.splice(nodes.indexOf(clsNode), 0, {
      name: `${clsNode.name.replace(/\/[^/]*$/, '')}/dropout/Dropout`,
      opType: 'Dropout',
      domain: '',
      inputs: [clsNode.inputs[0]!, `${dropped}_ratio`],
      outputs: [dropped],
      attrs: {},
    });
    constants.set(`${dropped}_ratio`, floatTensor(`${dropped}_ratio`, [], [dropout]));
    clsNode.inputs[0] = dropped;
  }
  const trainable = [...new Set(nodes.flatMap((n) => n.inputs.filter((i) => im.params.includes(i) || i.endsWith('__new'))))];
  const used = new Set(nodes.flatMap((n) => n.inputs));
  for (const k of [...constants.keys()]) if (!used.has(k)) constants.delete(k);
  const state = im.buffers.filter((b) => constants.has(b));
  return {
    index: 0,
    name: 'network',
    input: im.input,
    output: logits,
    nodes,
    constants,
    trainable,
    state,
    inputShape: pm.inputShape,
    outputShape: [classes],
  };
}

/** A new J-way classifier (PyTorch's default Linear/Conv init), named like the old one plus `__new`. */
function replaceClassifier(cls: Node, nodes: Node[], constants: Map<string, TensorData>, classes: number, seed: number): void {
  const rng = new Rng(mixSeed(seed, 0xc1a55));
  const fresh = (old: string, dims: number[], fanIn: number) => {
    const name = `${old}__new`;
    const bound = 1 / Math.sqrt(fanIn);
    constants.set(name, floatTensor(name, dims, Float32Array.from({ length: numElements(dims) }, () => rng.uniform(-bound, bound))));
    return name;
  };
  const w = constants.get(cls.inputs[1]!);
  if (!w) throw new Error(`classifier '${cls.name}' has no constant weight to replace`);
  if (cls.opType === 'Gemm') {
    const transB = cls.attrs.transB?.type === 'int' && cls.attrs.transB.value === 1;
    const fanIn = transB ? w.dims[1]! : w.dims[0]!;
    cls.inputs[1] = fresh(w.name, transB ? [classes, fanIn] : [fanIn, classes], fanIn);
    if (cls.inputs[2]) cls.inputs[2] = fresh(cls.inputs[2], [classes], fanIn);
  } else if (cls.opType === 'Conv') {
    const fanIn = numElements(w.dims.slice(1));
    cls.inputs[1] = fresh(w.name, [classes, ...w.dims.slice(1)], fanIn);
    if (cls.inputs[2]) cls.inputs[2] = fresh(cls.inputs[2], [classes], fanIn);
  } else if (cls.opType === 'MatMul') {
    const fanIn = w.dims[0]!;
    cls.inputs[1] = fresh(w.name, [fanIn, classes], fanIn);
    const add = nodes.find((n) => n.opType === 'Add' && n.inputs.includes(cls.outputs[0]!));
    const bias = add?.inputs.find((i) => constants.has(i));
    if (add && bias) add.inputs[add.inputs.indexOf(bias)] = fresh(bias, [classes], fanIn);
  } else throw new Error(`cannot replace a ${cls.opType} classifier ('${cls.name}') for a new label set`);
}
