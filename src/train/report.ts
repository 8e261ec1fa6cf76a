/**
 * What a run reports: its result, and its events rendered as text for people: a progress bar
 * redrawn in place on a terminal, periodic plain progress lines elsewhere (logs, CI), one line per
 * epoch and a closing summary. The CLI writes it to stderr so stdout carries only results.
 */
import type { Verbosity } from './options.js';
import type { FinetuneEvent, FinetuneResult, ProgressEvent } from './events.js';
import { formatSeconds } from './progress.js';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { resumeCommand } from './runFolder.js';

export type { FinetuneResult } from './events.js';
export type { Verbosity } from './options.js';

export interface ReporterOptions {
  stream: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  verbosity?: Verbosity;
  /** Redraw a bar in place (default: the stream is a terminal). */
  tty?: boolean;
  /** Seconds between plain progress lines when not on a terminal (default 10). */
  plainInterval?: number;
}

const PHASE_LABEL: Record<ProgressEvent['phase'], string> = {
  decode: 'decode',
  build: 'build graphs',
  train: 'train',
  validate: 'validate',
  'export-check': 'export check',
  evaluate: 'evaluate',
};

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function mean(a: number[]): number {
  return a.reduce((s, x) => s + x, 0) / Math.max(a.length, 1);
}

/** One progress report as text (without bar). */
export function formatProgress(e: ProgressEvent): string {
  const where = e.epoch !== undefined ? ` epoch ${e.epoch}/${e.epochs ?? '?'}` : '';
  const parts = [`${PHASE_LABEL[e.phase]}${where}`, `${e.done}/${e.total} ${e.unit}`];
  if (e.imagesPerSecond !== undefined) parts.push(`${e.imagesPerSecond.toFixed(0)} img/s`);
  if (e.meanLoss !== undefined) parts.push(`epoch mean step loss ${e.meanLoss.toFixed(3)} (mean over blocks)`);
  if (e.done < e.total && Number.isFinite(e.phaseEtaSeconds)) parts.push(`phase ETA ${formatSeconds(e.phaseEtaSeconds)}`);
  if (e.runEtaSeconds !== undefined) parts.push(`run ETA ${formatSeconds(e.runEtaSeconds)}`);
  return parts.join('  ');
}

/** The lines of a non-progress event at the given verbosity (progress has its own drawing). */
export function formatEvent(e: FinetuneEvent, verbosity: Verbosity = 'normal'): string[] {
  const quiet = verbosity === 'quiet';
  const verbose = verbosity === 'verbose';
  switch (e.type) {
    case 'model':
      return quiet ? [] : [`model  ${e.description}`];
    case 'data': {
      if (quiet) return e.skipped.length ? [`warning: ${e.skipped.length} unreadable images skipped`] : [];
      const lines = [`data   ${e.source}${e.skipped.length ? `; ${e.skipped.length} unreadable images skipped` : ''}`];
      for (const s of e.skipped.slice(0, verbose ? e.skipped.length : 5)) lines.push(`       skipped ${s.path}: ${s.reason}`);
      return lines;
    }
    case 'config': {
      const c = e.config;
      return quiet ? [] : [`run    ${c.out}  (${c.method}, norm ${c.norm}, aux ${c.auxKernel}×${c.auxKernel}${c.headPool ? ` head pool ${c.headPool}` : ''}, lr ${c.lr}, batch ${c.batchSize}, ensemble ${c.ensemble}, seed ${c.seed}; ${e.path})`];
    }
    case 'warning':
      return [`warning: ${e.message}`];
    case 'head-init': {
      if (quiet) return [];
      const m = e.matched;
      return m
        ? [`head   J-way map starts from the pretrained classifier's rows, matched on ${m.images} training images: ${e.classes.map((c, j) => `${c}→${m.source[j]} (${pct(m.meanProb[j]!)})`).join(', ')}`]
        : ["head   the pretrained classifier cannot start the J-way map (not a linear map on the head block's output): random start"];
    }
    case 'note':
      return quiet ? [] : [e.message];
    case 'interrupted':
      return [interruptedNote(e.out, e.epochs, e.exportedEpoch)];
    case 'block':
      return verbose
        ? [
            `  block ${e.index} ${e.name.padEnd(12)} out ${e.outputShape.join('×').padEnd(12)} params ${String(e.params).padStart(9)} + head ${e.headParams}` +
              `${e.frozen ? ' (frozen)' : ''}${e.probe ? ' (linear head on the detached last block)' : ''}  graphs built in ${e.buildSeconds.toFixed(1)}s`,
          ]
        : [];
    case 'resume':
      return quiet ? [] : [`resume from epoch ${e.fromEpoch} (checkpoint in ${e.out})`];
    case 'step':
    case 'progress':
      return [];
    case 'epoch': {
      if (quiet) return [];
      const m = e.metrics;
      const line =
        `epoch ${String(m.epoch).padStart(3)}/${e.epochs}  train loss ${mean(m.train.loss).toFixed(3)} (mean over blocks) layers ${pct(m.train.layers.all!)}  ` +
        `val layers ${Object.entries(m.val.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}  ` +
        `blocks ${m.val.acc.map(pct).join(' ')}  ${m.imagesPerSecond.toFixed(0)} img/s  ${formatSeconds(m.seconds)}`;
      if (!verbose) return [line];
      return [line, ...e.blocks.map((b, k) => `      ${b.padEnd(14)} train loss ${m.train.loss[k]!.toFixed(4)} acc ${pct(m.train.acc[k]!)}  val loss ${m.val.loss[k]!.toFixed(4)} acc ${pct(m.val.acc[k]!)}  lr ${m.lr[k]!.toExponential(2)}`)];
    }
    case 'early-stop':
      return quiet ? [] : [`early stop: validation accuracy has not improved for ${e.patience} epochs (best ${pct(e.bestAccuracy)} at epoch ${e.bestEpoch})`];
    case 'export': {
      const ok = e.check.maxAbsDiff <= e.check.tolerance;
      const lines = [
        `${ok ? '✓' : '✗'} exported model reproduces training-time evaluation (max abs diff ${e.check.maxAbsDiff.toExponential(1)}, tolerance ${e.check.tolerance.toExponential(0)}; accuracy ${pct(e.check.accuracy)}` +
          (e.check.crossValidated !== undefined ? ` on the validation images its ensemble weights were fitted on; ${pct(e.check.crossValidated)} cross-validated)` : ')'),
      ];
      if (quiet) return ok ? [] : lines;
      lines.push(`  heads in the export: ${e.heads.join(', ')}`);
      if (e.latency) {
        const l = e.latency;
        lines.push(`  latency, batch of ${l.batch}: exported ${l.exportedMs.toFixed(1)} ms vs original network ${l.originalMs.toFixed(1)} ms (×${(l.exportedMs / l.originalMs).toFixed(2)}; median of ${l.runs}, this machine, now)`);
      }
      return lines;
    }
    case 'summary':
      return quiet ? [] : summaryLines(e.result);
  }
}

/** What an interrupted run kept, and the command that continues it. */
function interruptedNote(out: string, epochs: number, exportedEpoch: number | undefined): string {
  if (!epochs) return 'interrupted before the first epoch finished: nothing to keep; start again to train';
  return (
    `interrupted: the checkpoint of epoch ${epochs} is kept in ${out}` +
    `${exportedEpoch ? `, and model.onnx holds the best epoch so far (${exportedEpoch})` : ''}. Continue with: ${resumeCommand(out)}`
  );
}

function summaryLines(r: FinetuneResult): string[] {
  const b = r.best;
  if (!b) return [];
  const lines = [`\nbest epoch ${b.epoch} of ${r.history.length}${r.stoppedEarly ? ' (early stop)' : ''}: validation "layers" accuracy ${pct(b.ensemble.acc)} (${b.ensemble.rule})`];
  lines.push('  block          params    val acc   val loss   train img/s');
  r.blocks.forEach((blk, k) =>
    lines.push(
      `  ${`${blk.index} ${blk.name}`.padEnd(14)} ${String(blk.params + blk.headParams).padStart(9)}  ${pct(b.val.acc[k]!).padStart(7)}  ${b.val.loss[k]!.toFixed(4).padStart(9)}  ${b.blockImagesPerSecond[k]!.toFixed(0).padStart(11)}`,
    ),
  );
  const last = r.history.at(-1)!;
  lines.push(`  ensembles: ${Object.entries(b.val.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
  lines.push(`  throughput ${last.imagesPerSecond.toFixed(0)} img/s overall, peak memory ${r.peakRssMB.toFixed(0)} MB`);
  lines.push(
    `  time per epoch ${formatSeconds(last.seconds)} (training ${formatSeconds(last.trainSeconds)}, ${(last.stepSeconds * 1000).toFixed(0)} ms/step), trainable params ${r.trainableParams.toLocaleString('en-US')} (aux heads included)`,
  );
  const t = r.test;
  if (t) {
    lines.push(`  test (${t.count} images, never used for any choice): "layers" ${pct(t.ensemble.acc)} (${t.ensemble.rule})${t.exported !== undefined ? `, exported model ${pct(t.exported)}` : ''}`);
    lines.push(`    ensembles (weights fitted on validation): ${Object.entries(t.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
    lines.push(`    blocks ${t.acc.map(pct).join(' ')}`);
  }
  lines.push(`  run folder ${r.out}: config.json, metrics.csv, metrics.jsonl, curves.svg, report.html${r.modelPath ? ', model.onnx, model.json' : ''}`);
  return lines;
}

/** An `onEvent` handler writing the run's human log to `stream`. */
export function createReporter(opts: ReporterOptions): (e: FinetuneEvent) => void {
  const verbosity = opts.verbosity ?? 'normal';
  const tty = opts.tty ?? Boolean(opts.stream.isTTY);
  const interval = (opts.plainInterval ?? 10) * 1000;
  let barShown = false;
  let lastPlain = -Infinity;
  const clearBar = () => {
    if (barShown) opts.stream.write('\r\x1b[K');
    barShown = false;
  };
  return (e) => {
    if (e.type === 'progress') {
      if (verbosity === 'quiet') return;
      if (tty) {
        const width = 20;
        const filled = Math.round((width * e.done) / Math.max(e.total, 1));
        // Kept within the terminal's width: a wrapped line cannot be redrawn in place.
        const columns = (opts.stream as { columns?: number }).columns ?? 120;
        const line = `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${formatProgress(e)}`;
        opts.stream.write(`\r${line.slice(0, Math.max(20, columns - 1))}\x1b[K`);
        barShown = true;
        if (e.done >= e.total) clearBar();
        return;
      }
      const now = performance.now();
      // Plain lines: at most one per interval, never for a phase that is already over.
      if (e.done < e.total && now - lastPlain >= interval) {
        lastPlain = now;
        opts.stream.write(`[progress] ${formatProgress(e)}\n`);
      }
      return;
    }
    const lines = formatEvent(e, verbosity);
    if (!lines.length) return;
    clearBar();
    opts.stream.write(lines.join('\n') + '\n');
  };
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
