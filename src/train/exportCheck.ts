/**
 * The end of a run: the best epoch's weights exported as one deployable model, and a check that
 * the export, run on the validation split, reproduces the training-time ensemble's scores.
 */
import { join } from 'node:path';
import { batches, type PreparedData } from '../data/index.js';
import type { Model } from '../ir/graph.js';
import { saveModel } from '../onnx/io.js';
import { accuracy, combine } from '../sff/ensemble.js';
import { buildExportModel, type ExportBlock } from '../export/exportModel.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { imagesTensor } from '../runtime/tensors.js';
import type { BlockExecutor } from './executor.js';
import type { PreparedModel } from './model.js';
import type { RunConfig } from './options.js';
import type { ExportCheck } from './report.js';
import type { BestEpoch } from './runState.js';
import type { Trainer } from './stages.js';

/** Writes `<out>/model.onnx` from the best epoch's weights (ensemble `weights` per block) and checks it. */
export async function exportBest(
  pm: PreparedModel,
  trainers: Trainer[],
  executor: BlockExecutor,
  best: BestEpoch,
  weights: number[],
  data: PreparedData,
  cfg: RunConfig,
  rt: RuntimeOptions,
): Promise<{ modelPath: string; exportCheck: ExportCheck }> {
  await executor.setWeights(best.states);
  const modelPath = join(cfg.out, 'model.onnx');
  const exported = buildExportModel({
    inputName: pm.inputName,
    inputShape: pm.inputShape,
    blocks: trainers.map((t, k): ExportBlock => ({ block: t.block, objective: t.objective, layout: t.layout, params: best.states[k]!.params, state: new Map(Object.entries(best.states[k]!.state)) })),
    weights,
    classes: cfg.classes,
    preprocess: { size: cfg.imageSize, mean: [...data.preprocess.mean], std: [...data.preprocess.std] },
    extraMetadata: { 'sff.ensemble': cfg.ensemble, 'sff.source': pm.description },
  });
  saveModel(exported, modelPath);
  return { modelPath, exportCheck: await checkExport(exported, executor, data, cfg, weights, pm.inputName, rt) };
}

/** Runs the exported model on the validation split and compares with the training-time ensemble. */
async function checkExport(model: Model, executor: BlockExecutor, data: PreparedData, cfg: RunConfig, weights: number[], inputName: string, rt: RuntimeOptions): Promise<ExportCheck> {
  const J = cfg.classes.length;
  const { mean, std } = data.preprocess;
  const reference = await executor.evaluate(data.val, { batchSize: cfg.batchSize, classes: J, mean, std });
  const refScores = combine(reference.goodness, weights);
  const session = await createSession(model, rt);
  const dims = [data.val.channels, data.val.height, data.val.width];
  const scores = new Float32Array(data.val.count * J);
  let offset = 0;
  for await (const batch of batches(data.val, { batchSize: cfg.batchSize, shuffle: false, seed: 0, epoch: 0, mean, std })) {
    const out = await session.run({ [inputName]: imagesTensor(batch.x, batch.n, dims) });
    scores.set(out.scores!.data as Float32Array, offset * J);
    offset += batch.n;
  }
  await session.release();
  let maxAbsDiff = 0;
  let scale = 0;
  for (let i = 0; i < scores.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(scores[i]! - refScores[i]!));
    scale = Math.max(scale, Math.abs(refScores[i]!));
  }
  return { maxAbsDiff, accuracy: accuracy(scores, reference.labels, J), trainingAccuracy: accuracy(refScores, reference.labels, J), scale };
}
