/**
 * The run's metric files, rewritten from the whole history at the end of every epoch:
 * - metrics.jsonl: one JSON object per epoch whose per-block values are keyed by block name;
 * - metrics.csv: one row per epoch, one named column per block and metric
 *   (`val_acc/<block>`, `train_loss/<block>`, `lr/<block>` …), for pandas or a spreadsheet.
 * Both carry the epoch's end time (ISO 8601, UTC) and its learning rates.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EpochMetrics, SplitMetrics } from './metrics.js';

export const METRICS_JSONL = 'metrics.jsonl';
export const METRICS_CSV = 'metrics.csv';

type ByBlock = Record<string, number>;

export interface LabelledSplit {
  loss: ByBlock;
  acc: ByBlock;
  /** Ensemble accuracy per rule ("all", "last:4", …). */
  ensembles: Record<string, number>;
}

/** One line of metrics.jsonl. */
export interface LabelledEpoch {
  epoch: number;
  time: string | null;
  seconds: number;
  trainSeconds: number;
  steps: number;
  imagesPerSecond: number;
  peakRssMB: number;
  ensemble: { rule: string; acc: number; weights: ByBlock };
  train: LabelledSplit;
  val: LabelledSplit;
  lr: ByBlock;
  blockImagesPerSecond: ByBlock;
}

function byBlock(blocks: string[], values: number[]): ByBlock {
  return Object.fromEntries(blocks.map((b, k) => [b, values[k]!]));
}

function labelSplit(blocks: string[], s: SplitMetrics): LabelledSplit {
  return { loss: byBlock(blocks, s.loss), acc: byBlock(blocks, s.acc), ensembles: { ...s.layers } };
}

export function labelEpoch(m: EpochMetrics, blocks: string[]): LabelledEpoch {
  return {
    epoch: m.epoch,
    time: m.time ?? null,
    seconds: m.seconds,
    trainSeconds: m.trainSeconds,
    steps: m.steps,
    imagesPerSecond: m.imagesPerSecond,
    peakRssMB: m.peakRssMB,
    ensemble: { rule: m.ensemble.rule, acc: m.ensemble.acc, weights: byBlock(blocks, m.ensemble.weights) },
    train: labelSplit(blocks, m.train),
    val: labelSplit(blocks, m.val),
    lr: byBlock(blocks, m.lr),
    blockImagesPerSecond: byBlock(blocks, m.blockImagesPerSecond),
  };
}

/** Column names and values of one epoch's CSV row. */
export function csvColumns(m: EpochMetrics, blocks: string[]): [string, number | string][] {
  const cols: [string, number | string][] = [
    ['epoch', m.epoch],
    ['time', m.time ?? ''],
    ['seconds', m.seconds],
    ['train_seconds', m.trainSeconds],
    ['images_per_second', m.imagesPerSecond],
    [`val_acc/ensemble`, m.ensemble.acc],
    ['train_acc/ensemble_all', m.train.layers.all ?? NaN],
  ];
  for (const [rule, acc] of Object.entries(m.val.layers)) cols.push([`val_acc/ensemble_${rule}`, acc]);
  const per: [string, number[]][] = [
    ['train_loss', m.train.loss],
    ['val_loss', m.val.loss],
    ['train_acc', m.train.acc],
    ['val_acc', m.val.acc],
    ['lr', m.lr],
    ['ensemble_weight', m.ensemble.weights],
  ];
  for (const [metric, values] of per) blocks.forEach((b, k) => cols.push([`${metric}/${b}`, values[k]!]));
  return cols;
}

function csvCell(v: number | string): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** Writes both files from a whole history (a new run, or a resumed one after dropping epochs past its checkpoint). */
export function writeMetricsFiles(out: string, history: EpochMetrics[], blocks: string[]): void {
  writeFileSync(join(out, METRICS_JSONL), history.map((m) => JSON.stringify(labelEpoch(m, blocks)) + '\n').join(''));
  if (!history.length) {
    writeFileSync(join(out, METRICS_CSV), '');
    return;
  }
  const header = csvColumns(history[0]!, blocks).map(([k]) => csvCell(k)).join(',');
  writeFileSync(join(out, METRICS_CSV), [header, ...history.map((m) => csvColumns(m, blocks).map(([, v]) => csvCell(v)).join(','))].join('\n') + '\n');
}
