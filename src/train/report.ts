/** What a run reports: its result, the per-epoch log line, the accuracy curves and the closing summary. */
import { accuracySvg, type Series } from './curves.js';
import { formatSeconds } from './progress.js';
import type { EpochMetrics } from './metrics.js';
import type { RunConfig } from './options.js';
import type { Trainer } from './stages.js';
import type { TestMetrics } from './testReport.js';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';

export interface ExportCheck {
  maxAbsDiff: number;
  accuracy: number;
  trainingAccuracy: number;
  scale: number;
}

export interface FinetuneResult {
  out: string;
  modelPath?: string;
  config: RunConfig;
  history: EpochMetrics[];
  best: EpochMetrics | undefined;
  exportCheck?: ExportCheck;
  blocks: { name: string; params: number; headParams: number; frozen: boolean }[];
  peakRssMB: number;
  /** Trainable parameters, aux heads (and CwC-mod's linear probe) included. */
  trainableParams: number;
  stoppedEarly: boolean;
  /** Accuracy on the held-out test split (--split with a test share, or --test DIR), computed once at the end. */
  test?: TestMetrics;
}

export function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function mean(a: number[]): number {
  return a.reduce((s, x) => s + x, 0) / Math.max(a.length, 1);
}

export function epochLine(m: EpochMetrics, epochs: number): string {
  return (
    `epoch ${String(m.epoch).padStart(3)}/${epochs}  train loss ${mean(m.train.loss).toFixed(3)} layers ${pct(m.train.layers.all!)}  ` +
    `val layers ${Object.entries(m.val.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}  ` +
    `blocks ${m.val.acc.map(pct).join(' ')}  ${m.imagesPerSecond.toFixed(0)} img/s  ${formatSeconds(m.seconds)}`
  );
}

export function curvesSvg(history: EpochMetrics[], trainers: Trainer[]): string {
  const series: Series[] = trainers.map((t, k) => ({ name: `${t.block.index} ${t.block.name}`, values: history.map((m) => m.val.acc[k]!) }));
  series.push({ name: `layers (${history[0]!.ensemble.rule})`, values: history.map((m) => m.ensemble.acc), emphasis: true });
  return accuracySvg(series, 'SFF validation accuracy per block and ensemble');
}

/** Whether the export reproduces training-time evaluation, within float tolerance of the scores' scale. */
export function exportCheckLine(c: ExportCheck): string {
  return (
    `${c.maxAbsDiff <= 1e-3 * Math.max(1, c.scale) ? '✓' : '✗'} exported model reproduces training-time evaluation ` +
    `(max abs diff ${c.maxAbsDiff.toExponential(1)}, accuracy ${pct(c.accuracy)})`
  );
}

export function summarise(r: FinetuneResult, trainers: Trainer[], log: (s: string) => void): void {
  const b = r.best;
  if (!b) return;
  log(`\nbest epoch ${b.epoch} of ${r.history.length}${r.stoppedEarly ? ' (early stop)' : ''}: validation "layers" accuracy ${pct(b.ensemble.acc)} (${b.ensemble.rule})`);
  log('  block          params    val acc   val loss   train img/s');
  trainers.forEach((t, k) =>
    log(
      `  ${`${t.block.index} ${t.block.name}`.padEnd(14)} ${String(r.blocks[k]!.params + r.blocks[k]!.headParams).padStart(9)}  ${pct(b.val.acc[k]!).padStart(7)}  ${b.val.loss[k]!.toFixed(4).padStart(9)}  ${b.blockImagesPerSecond[k]!.toFixed(0).padStart(11)}`,
    ),
  );
  const last = r.history.at(-1)!;
  log(`  ensembles: ${Object.entries(b.val.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
  log(`  throughput ${last.imagesPerSecond.toFixed(0)} img/s overall, peak memory ${r.peakRssMB.toFixed(0)} MB`);
  log(`  time per epoch ${formatSeconds(last.seconds)} (training ${formatSeconds(last.trainSeconds)}, ${(last.stepSeconds * 1000).toFixed(0)} ms/step), trainable params ${r.trainableParams.toLocaleString('en-US')} (aux heads included)`);
  const t = r.test;
  if (t) {
    log(`  test (${t.count} images, never used for any choice): "layers" ${pct(t.ensemble.acc)} (${t.ensemble.rule})${t.exported !== undefined ? `, exported model ${pct(t.exported)}` : ''}`);
    log(`    ensembles (weights fitted on validation): ${Object.entries(t.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
    log(`    blocks ${t.acc.map(pct).join(' ')}`);
  }
  if (r.modelPath) log(`model written to ${r.modelPath}`);
}

/** summary.json: the run's configuration, its best validation epoch and its test accuracy, for tables and scripts. */
export function writeSummary(r: FinetuneResult): void {
  const b = r.best;
  const summary = {
    config: r.config,
    epochs: r.history.length,
    bestEpoch: b?.epoch,
    val: b ? { ensemble: b.ensemble, layers: b.val.layers, acc: b.val.acc } : undefined,
    test: r.test,
    exportCheck: r.exportCheck,
    blocks: r.blocks,
    trainableParams: r.trainableParams,
    seconds: r.history.reduce((a, m) => a + m.seconds, 0),
  };
  writeFileAtomic(join(r.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
}
