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
export type { FinetuneOptions, RunConfig, Method, ExportHeads, ExportScores, ExportDtype } from './train/options.js';
export { OptionError } from './train/options.js';
export type { FinetuneEvent, ProgressEvent, Phase, BlockBuiltEvent, ExportCheck } from './train/events.js';
export type { LatencyNote } from './export/latency.js';
export type { EpochMetrics, SplitMetrics } from './train/metrics.js';
export { createReporter, formatEvent, formatProgress, type Verbosity, type ReporterOptions } from './train/report.js';
export { CONFIG_FILE, optionsFromConfigFile, type RunConfigFile } from './train/configFile.js';
export { METRICS_CSV, METRICS_JSONL, type LabelledEpoch, type LabelledSplit } from './train/metricsFiles.js';
export { prepareModel, type PreparedModel, type PrepareModelOptions } from './train/model.js';
export { buildExportModel, exportedHeads, type ExportSpec, type ExportBlock } from './export/exportModel.js';
export type { ModelSidecar } from './export/sidecar.js';
export { evaluateModel, type EvalReport, type EvalOptions } from './eval/evaluateModel.js';
export { prepareData, batches, DataError, parseNormalize, type DataOptions, type PreparedData, type ImageSet } from './data/index.js';
export { NORMALIZE_PRESETS } from './data/preprocess.js';
export type { RuntimeOptions } from './runtime/session.js';
