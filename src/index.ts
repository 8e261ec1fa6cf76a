/**
 * sff-finetune as a library. The pipeline, stage by stage (each imports only the ones before it):
 * graph IR → ONNX I/O → onnxruntime (`runtime/`) → import/normalise → blocks → autodiff →
 * SFF heads and losses → optimiser → export → training → evaluation.
 */
export { loadModel, saveModel, encodeModel, decodeModel, ModelFileError } from './onnx/io.js';
export { Graph, makeModel, type Model, type Node } from './ir/graph.js';
export { GraphBuilder } from './ir/builder.js';
export { probeShapes } from './runtime/probe.js';
export { buildGradients } from './autodiff/index.js';
export { appendHead, appendGoodnessLoss, headParams, defaultAuxKernel, type HeadSpec, type NormPlacement } from './sff/head.js';
export { parseEnsemble, ensembleWeights, combine } from './sff/ensemble.js';
export { appendAdamW, ADAMW_DEFAULTS, type AdamWConfig } from './optim/adamw.js';
export { buildTrainStep, buildEvalGraph } from './train/artifacts.js';
export { finetune, NonFiniteLossError, type FinetuneResult } from './train/finetune.js';
export type { FinetuneOptions, RunConfig } from './train/options.js';
export { OptionError } from './train/options.js';
export { prepareModel } from './train/model.js';
export { buildExportModel } from './export/exportModel.js';
export { evaluateModel, type EvalReport } from './eval/evaluateModel.js';
export { prepareData, batches, DataError } from './data/index.js';
