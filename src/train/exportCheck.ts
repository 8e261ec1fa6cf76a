/**
 * The end of a run: the best epoch's weights exported as one deployable model, and a check that
 * the export, run on the validation split, reproduces the training-time ensemble's scores.
 */
import { join } from 'node:path';
import type { PreparedData } from '../data/index.js';
import type { Model } from '../ir/graph.js';
import { saveModel } from '../onnx/io.js';
import { accuracy, combine } from '../sff/ensemble.js';
import { buildExportModel, type ExportBlock } from '../export/exportModel.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { collectGoodness, type SplitGoodness } from './evaluate.js';
import { modelScores } from './testReport.js';
import type { PreparedModel } from './model.js';
import type { RunConfig } from './options.js';
import type { ExportCheck } from './report.js';
import type { BestEpoch } from './runState.js';
import type { Trainer } from './stages.js';

/** Writes `<out>/model.onnx` from the best epoch's weights (ensemble `weights` per block) and checks it. */
export async function exportBest(
  pm: PreparedModel,
  trainers: Trainer[],
  best: BestEpoch,
  weights: number[],
  data: PreparedData,
  cfg: RunConfig,
  rt: RuntimeOptions,
): Promise<{ modelPath: string; exportCheck: ExportCheck; exported: Model; valGoodness: SplitGoodness }> {
  trainers.forEach((t, k) => t.runner.setWeights(best.states[k]!));
  const modelPath = join(cfg.out, 'model.onnx');
  const exported = buildExportModel({
    inputName: pm.inputName,
    inputShape: pm.inputShape,
    blocks: trainers.map((t): ExportBlock => ({ block: t.block, objective: t.objective, layout: t.runner.layout, params: t.runner.currentParams(), state: t.runner.currentState() })),
    weights,
    classes: cfg.classes,
    preprocess: { size: cfg.imageSize, mean: [...data.preprocess.mean], std: [...data.preprocess.std] },
    extraMetadata: { 'sff.ensemble': cfg.ensemble, 'sff.source': pm.description },
  });
  saveModel(exported, modelPath);
  const { reference, ...exportCheck } = await checkExport(exported, trainers, data, cfg, weights, pm.inputName, rt);
  return { modelPath, exportCheck, exported, valGoodness: reference };
}

/** Runs the exported model on the validation split and compares with the training-time ensemble. */
async function checkExport(model: Model, trainers: Trainer[], data: PreparedData, cfg: RunConfig, weights: number[], inputName: string, rt: RuntimeOptions): Promise<ExportCheck & { reference: SplitGoodness }> {
  const J = cfg.classes.length;
  const { mean, std } = data.preprocess;
  const reference = await collectGoodness(trainers.map((t) => t.runner), data.val, { batchSize: cfg.batchSize, classes: J, mean, std });
  const refScores = combine(reference.goodness, weights);
  const session = await createSession(model, rt);
  const scores = await modelScores(session, inputName, data.val, { classes: J, batchSize: cfg.batchSize, mean, std });
  await session.release();
  let maxAbsDiff = 0;
  let scale = 0;
  for (let i = 0; i < scores.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(scores[i]! - refScores[i]!));
    scale = Math.max(scale, Math.abs(refScores[i]!));
  }
  return { maxAbsDiff, accuracy: accuracy(scores, reference.labels, J), trainingAccuracy: accuracy(refScores, reference.labels, J), scale, reference };
}
