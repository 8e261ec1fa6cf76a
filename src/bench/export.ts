/**
 * Deployed latency of the exported model: the export pruned to the ensemble's heads (the default)
 * against the all-heads export and the original network, with float32 and float16 weight storage,
 * on the shared MobileNetV3 (16 blocks, ImageNet-pretrained, 224 px) when ../shared has it, else the
 * built-in MobileNetV3-Small at 96 px. Weights are the model's own plus freshly initialised heads:
 * latency does not depend on their values. Writes nothing itself; `npm run bench` stores the JSON.
 *
 *   node dist/bench/export.js [model.onnx] [--runs N] [--batch B] [--threads T]
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { buildExportModel, type ExportBlock } from '../export/exportModel.js';
import { medianLatencies } from '../export/latency.js';
import { encodeModel } from '../onnx/io.js';
import { blockLayout, initialParams } from '../train/artifacts.js';
import { planStages } from '../train/stages.js';
import { prepareModel } from '../train/model.js';
import type { RunConfig } from '../train/options.js';

const SHARED_MODEL = resolve('../shared/models/mobilenet_v3_large_minimalistic_224_float.onnx');

export interface ExportBenchResult {
  model: string;
  blocks: number;
  ensemble: string;
  batch: number;
  runs: number;
  threads: number | 'all';
  loadAverage: number[];
  /** Median ms per batch. */
  ms: { original: number; prunedFloat32: number; allHeadsFloat32: number; prunedFloat16: number };
  bytes: { prunedFloat32: number; allHeadsFloat32: number; prunedFloat16: number };
  /** all-heads ms / pruned ms (> 1: pruning is faster). */
  pruningSpeedup: number;
}

export async function benchExport(opts: { model?: string; runs?: number; batch?: number; threads?: number } = {}): Promise<ExportBenchResult> {
  const model = opts.model ?? (existsSync(SHARED_MODEL) ? SHARED_MODEL : 'builtin:mobilenetv3-small');
  const pm = await prepareModel(model, model.startsWith('builtin:') ? { imageSize: 96 } : {});
  const classes = Array.from({ length: 10 }, (_, k) => `class${k}`);
  const cfg: RunConfig = {
    method: 'sff', model, data: 'none', out: 'none', epochs: 1, batchSize: 16, lr: 3e-4, weightDecay: 0, seed: 0,
    ensemble: 'last:4', norm: 'none', auxKernel: 3, blocks: 'auto', freeze: [], normalize: 'imagenet', augment: false,
    imageSize: pm.imageSize, valFraction: 0.2, lrPatience: 10, stopPatience: 30, classes,
  };
  const stages = planStages(pm, cfg);
  const blocks: ExportBlock[] = stages.map(({ block, objective }) => {
    const layout = blockLayout(block, objective.params);
    const state = new Map(block.state.map((s) => [s, new Float32Array(block.constants.get(s)!.raw.slice().buffer)]));
    return { block, objective, layout, params: initialParams(block, objective.params, layout), state };
  });
  const weights = blocks.map((_, k) => (k >= blocks.length - 4 ? 1 : 0));
  const spec = { inputName: pm.inputName, inputShape: pm.inputShape, blocks, weights, classes, preprocess: { size: pm.imageSize, mean: [0, 0, 0], std: [1, 1, 1] } };
  const prunedFloat32 = encodeModel(buildExportModel({ ...spec, heads: 'ensemble' }));
  const allHeadsFloat32 = encodeModel(buildExportModel({ ...spec, heads: 'all' }));
  const prunedFloat16 = encodeModel(buildExportModel({ ...spec, heads: 'ensemble', dtype: 'float16' }));
  const batch = opts.batch ?? (pm.imported.dynamicBatch ? 16 : 1);
  const runs = opts.runs ?? 15;
  const ms = await medianLatencies(
    { original: pm.imported.model, prunedFloat32, allHeadsFloat32, prunedFloat16 },
    pm.inputShape,
    batch,
    runs,
    opts.threads ? { threads: opts.threads } : {},
  );
  return {
    model: model.startsWith('builtin:') ? model : `${model} (${(statSync(model).size / 2 ** 20).toFixed(1)} MB)`,
    blocks: blocks.length,
    ensemble: cfg.ensemble,
    batch,
    runs,
    threads: opts.threads ?? 'all',
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    ms: { original: ms.original!, prunedFloat32: ms.prunedFloat32!, allHeadsFloat32: ms.allHeadsFloat32!, prunedFloat16: ms.prunedFloat16! },
    bytes: { prunedFloat32: prunedFloat32.length, allHeadsFloat32: allHeadsFloat32.length, prunedFloat16: prunedFloat16.length },
    pruningSpeedup: ms.allHeadsFloat32! / ms.prunedFloat32!,
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const first = process.argv[2];
  const num = (k: string) => (arg(k) !== undefined ? Number(arg(k)) : undefined);
  const runs = num('--runs');
  const batch = num('--batch');
  const threads = num('--threads');
  benchExport({
    ...(first && !first.startsWith('--') ? { model: first } : {}),
    ...(runs ? { runs } : {}),
    ...(batch ? { batch } : {}),
    ...(threads ? { threads } : {}),
  }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
