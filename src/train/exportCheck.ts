/**
 * The end of a run: the best epoch's weights exported as one deployable model (only the heads its
 * ensemble uses, unless asked for all), its model.json sidecar, a check that the export, run on the
 * validation split, reproduces the training-time ensemble's scores, and a latency note.
 */
import { join } from 'node:path';
import { batches, type PreparedData } from '../data/index.js';
import type { Model } from '../ir/graph.js';
import { saveModel } from '../onnx/io.js';
import { accuracy, combine, parseEnsemble } from '../sff/ensemble.js';
import { buildExportModel, exportedHeads, goodnessOutputName, type ExportBlock } from '../export/exportModel.js';
import { buildSidecar, SPLIT_METADATA_KEY, writeSidecar } from '../export/sidecar.js';
import type { SplitRecord } from '../data/split.js';
import { measureLatency, type LatencyNote } from '../export/latency.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { imagesTensor } from '../runtime/tensors.js';
import type { BlockExecutor } from './blockExecutor.js';
import type { SplitGoodness } from './evaluate.js';
import type { EpochMetrics } from './metrics.js';
import type { PreparedModel } from './model.js';
import type { RunConfig } from './options.js';
import type { ExportCheck } from './events.js';
import type { RunProgress } from './progress.js';
import type { BestEpoch } from './runState.js';
import type { Trainer } from './stages.js';

export interface ExportOutcome {
  modelPath: string;
  sidecarPath: string;
  exportCheck: ExportCheck;
  exportedHeads: string[];
  latency?: LatencyNote;
  /** The exported model, and the validation goodness of the weights it holds (reused by the test report). */
  exported: Model;
  valGoodness: SplitGoodness;
}

/** Writes `<out>/model.onnx` and `<out>/model.json` from the best epoch's weights and checks the model. */
export async function exportBest(
  pm: PreparedModel,
  trainers: Trainer[],
  executor: BlockExecutor,
  best: BestEpoch,
  bestMetrics: EpochMetrics,
  data: PreparedData,
  cfg: RunConfig,
  rt: RuntimeOptions,
  progress: RunProgress,
): Promise<ExportOutcome> {
  await executor.setWeights(best.states);
  const weights = bestMetrics.ensemble.weights;
  const heads = cfg.exportHeads ?? 'ensemble';
  const scores = cfg.exportScores ?? 'logits';
  const dtype = cfg.exportDtype ?? 'float32';
  const preprocess = { size: cfg.imageSize, mean: [...data.preprocess.mean], std: [...data.preprocess.std] };
  const kept = exportedHeads(trainers.map((t) => t.block), weights, heads);
  // The data cut, so `eval` on the same data picks the same validation/test images unasked.
  const split: SplitRecord = { data: cfg.data, seed: cfg.seed, valFraction: cfg.valFraction, testFraction: cfg.testFraction ?? 0 };
  const exported = buildExportModel({
    inputName: pm.inputName,
    inputShape: pm.inputShape,
    blocks: trainers.map((t, k): ExportBlock => ({ block: t.block, objective: t.objective, layout: t.layout, params: best.states[k]!.params, state: new Map(Object.entries(best.states[k]!.state)) })),
    weights,
    classes: cfg.classes,
    preprocess,
    extraMetadata: { 'sff.ensemble': cfg.ensemble, 'sff.source': pm.description, [SPLIT_METADATA_KEY]: JSON.stringify(split) },
    heads,
    scores,
    dtype,
  });
  const modelPath = join(cfg.out, 'model.onnx');
  saveModel(exported, modelPath);
  const { reference, ...checked } = await checkExport(exported, executor, data, cfg, weights, pm.inputName, rt, progress);
  const exportCheck: ExportCheck = parseEnsemble(cfg.ensemble).kind === 'weighted' ? { ...checked, crossValidated: bestMetrics.ensemble.acc } : checked;
  const sidecarPath = join(cfg.out, 'model.json');
  writeSidecar(
    sidecarPath,
    buildSidecar({
      modelFile: 'model.onnx',
      classes: cfg.classes,
      inputName: pm.inputName,
      inputShape: pm.inputShape,
      preprocess,
      scores,
      goodness: trainers.flatMap((t) => (kept.includes(goodnessOutputName(t.block)) ? [{ name: goodnessOutputName(t.block), block: t.block.name }] : [])),
      ensemble: { rule: cfg.ensemble, blocks: trainers.map((t) => t.block.name), weights },
      dtype,
      source: { model: cfg.model, description: pm.description, method: cfg.method, bestEpoch: bestMetrics.epoch, validationAccuracy: bestMetrics.ensemble.acc, split },
    }),
  );
  // BP's export is the original network with a new classifier: nothing to compare.
  const latency =
    cfg.method === 'bp'
      ? undefined
      : await measureLatency({ exported, original: pm.imported.model, inputShape: pm.inputShape, batch: pm.imported.dynamicBatch ? Math.min(16, cfg.batchSize) : 1, runtime: rt });
  return { modelPath, sidecarPath, exportCheck, exportedHeads: kept, ...(latency ? { latency } : {}), exported, valGoodness: reference };
}

/** Row-wise softmax of an [n, J] matrix (the reference for an export whose scores are probabilities). */
function softmaxRows(m: Float32Array, J: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < m.length / J; r++) {
    let max = -Infinity;
    for (let c = 0; c < J; c++) max = Math.max(max, m[r * J + c]!);
    let sum = 0;
    for (let c = 0; c < J; c++) sum += out[r * J + c] = Math.exp(m[r * J + c]! - max);
    for (let c = 0; c < J; c++) out[r * J + c]! /= sum;
  }
  return out;
}

/** Runs the exported model on the validation split and compares with the training-time ensemble. */
async function checkExport(
  model: Model,
  executor: BlockExecutor,
  data: PreparedData,
  cfg: RunConfig,
  weights: number[],
  inputName: string,
  rt: RuntimeOptions,
  progress: RunProgress,
): Promise<ExportCheck & { reference: SplitGoodness }> {
  const J = cfg.classes.length;
  const { mean, std } = data.preprocess;
  const phase = progress.phase('export-check', 2 * Math.ceil(data.val.count / cfg.batchSize), 'batches');
  let done = 0;
  const reference = await executor.evaluate(data.val, { batchSize: cfg.batchSize, classes: J, mean, std, onBatch: () => phase.update(++done) });
  const combined = combine(reference.goodness, weights);
  const refScores = cfg.exportScores === 'probabilities' ? softmaxRows(combined, J) : combined;
  const session = await createSession(model, rt);
  const dims = [data.val.channels, data.val.height, data.val.width];
  const scores = new Float32Array(data.val.count * J);
  let offset = 0;
  for await (const batch of batches(data.val, { batchSize: cfg.batchSize, shuffle: false, seed: 0, epoch: 0, mean, std })) {
    const out = await session.run({ [inputName]: imagesTensor(batch.x, batch.n, dims) });
    scores.set(out.scores!.data as Float32Array, offset * J);
    offset += batch.n;
    phase.update(++done);
  }
  phase.end();
  await session.release();
  let maxAbsDiff = 0;
  let scale = 0;
  for (let i = 0; i < scores.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(scores[i]! - refScores[i]!));
    scale = Math.max(scale, Math.abs(refScores[i]!));
  }
  const tolerance = (cfg.exportDtype === 'float16' ? 2e-2 : 1e-3) * Math.max(1, scale);
  return { maxAbsDiff, accuracy: accuracy(scores, reference.labels, J), trainingAccuracy: accuracy(refScores, reference.labels, J), scale, tolerance, reference };
}
