/**
 * From a model file (or a built-in architecture) to the blocks the trainer runs:
 * load → import/normalise → split into blocks → per-block constants and shapes.
 */
import { basename } from 'node:path';
import { loadModel } from '../onnx/io.js';
import { getMetadata, type Model } from '../ir/graph.js';
import type { TensorData } from '../ir/tensor.js';
import { importModel, type ImportedModel } from '../import/index.js';
import { splitIntoBlocksDetailed, type SplitMethod } from '../blocks/index.js';
import { createModel, isBuiltinModel, BUILTIN_MODELS } from '../models/index.js';
import type { TrainBlock } from './block.js';

export interface PreparedModel {
  /** One line for logs: source, input, blocks. */
  description: string;
  /** Name for the default output folder. */
  shortName: string;
  inputName: string;
  /** Per-sample input dims [C, H, W]. */
  inputShape: number[];
  imageSize: [number, number];
  blocks: TrainBlock[];
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
  imageSize?: number;
  /** Classes of a built-in model's (unused) classifier. */
  classes?: number;
}

/** `builtin:<kind>` or a path. */
export function loadModelSource(source: string, opts: PrepareModelOptions = {}): { model: Model; name: string } {
  if (source.startsWith('builtin:')) {
    const kind = source.slice('builtin:'.length);
    if (!isBuiltinModel(kind)) throw new Error(`unknown built-in model '${kind}': use builtin:${BUILTIN_MODELS.join(', builtin:')}`);
    return { model: createModel(kind, { ...(opts.imageSize ? { imageSize: opts.imageSize } : {}), classes: opts.classes ?? 10 }), name: kind };
  }
  return { model: loadModel(source), name: basename(source).replace(/\.onnx$/i, '') };
}

export async function prepareModel(source: string, opts: PrepareModelOptions = {}): Promise<PreparedModel> {
  const { model, name } = loadModelSource(source, opts);
  const imported = await importModel(model, opts.imageSize ? { imageSize: [opts.imageSize, opts.imageSize] } : {});
  const spec = !opts.blocks || opts.blocks === 'auto' || opts.blocks === 'cuts' ? (opts.blocks ?? 'auto') : opts.blocks.split(',').map((s) => s.trim());
  const split = splitIntoBlocksDetailed(imported, spec as 'auto' | 'cuts' | string[]);
  const inits = imported.model.graph.initializers;
  const dimsOf = (v: string) => {
    const s = imported.shapes.get(v);
    if (!s) throw new Error(`no shape known for '${v}'`);
    return s.dims.slice(1);
  };
  const blocks: TrainBlock[] = split.blocks.map((b) => {
    const constants = new Map<string, TensorData>();
    for (const n of b.nodes) for (const i of n.inputs) if (inits.has(i)) constants.set(i, inits.get(i)!);
    return {
      index: b.index,
      name: b.name,
      input: b.input,
      output: b.output,
      nodes: b.nodes,
      constants,
      trainable: b.params,
      state: b.buffers,
      inputShape: dimsOf(b.input),
      outputShape: dimsOf(b.output),
    };
  });
  const pre = getMetadata(model, 'sff.preprocess');
  const normalize = pre ? (({ mean, std }: { mean: number[]; std: number[] }) => `${mean.join(',')}/${std.join(',')}`)(JSON.parse(pre)) : undefined;
  const inputShape = imported.inputDims.slice(1);
  return {
    description: `${source} (${imported.opCounts ? Object.values(imported.opCounts).reduce((a, b) => a + b, 0) : '?'} nodes, ${imported.paramCount.toLocaleString('en-US')} params, input ${imported.input} [${inputShape.join('×')}], ${blocks.length} blocks by ${split.method}${imported.hasBatchNorm ? ', BatchNorm' : ''})`,
    shortName: name,
    inputName: imported.input,
    inputShape,
    imageSize: [inputShape[1]!, inputShape[2]!],
    blocks,
    splitMethod: split.method,
    fromScratch: getMetadata(model, 'sff.model') !== undefined,
    ...(normalize ? { normalize } : {}),
    imported,
  };
}
