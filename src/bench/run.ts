/**
 * `npm run bench`: the project's benchmarks in one run (≈ 10 minutes on a 2-core machine):
 *  - autodiff: generated backward graphs vs forward, block by block (autodiff.ts);
 *  - data: the image pipeline's images/s, cold and warm (data.ts);
 *  - throughput: SFF / BP train steps and forward-only inference, images/s and peak memory,
 *    each measurement in its own process (throughput.ts);
 *  - export: deployed latency of the pruned export vs the all-heads export and the original network (export.ts).
 * Writes bench/results/bench.json (and bench.md) and prints the JSON.
 *
 *   node dist/bench/run.js [--only autodiff,data,throughput,export] [--out bench/results]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchAutodiff } from './autodiff.js';
import { benchData } from './data.js';
import { runThroughput, throughputMarkdown, type ThroughputReport } from './throughput.js';
import { benchExport, type ExportBenchResult } from './export.js';

export interface BenchAllResult {
  date: string;
  machine: { cpus: number; cpu: string | undefined; memoryGB: number; node: string; loadAverage: number[] };
  seconds: Record<string, number>;
  autodiff?: Record<string, unknown>;
  data?: Record<string, unknown>;
  throughput?: ThroughputReport;
  export?: ExportBenchResult;
  errors: Record<string, string>;
}

export async function benchAll(opts: { only?: string[]; outDir?: string } = {}): Promise<BenchAllResult> {
  const want = (k: string) => !opts.only || opts.only.includes(k);
  const result: BenchAllResult = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGB: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    seconds: {},
    errors: {},
  };
  const part = async <K extends 'autodiff' | 'data' | 'throughput' | 'export'>(key: K, fn: () => Promise<BenchAllResult[K]>) => {
    if (!want(key)) return;
    const t0 = performance.now();
    console.error(`bench: ${key}…`);
    try {
      result[key] = await fn();
    } catch (e) {
      result.errors[key] = e instanceof Error ? (e.stack ?? e.message) : String(e);
      console.error(`bench: ${key} failed: ${result.errors[key]}`);
    }
    result.seconds[key] = Math.round((performance.now() - t0) / 100) / 10;
  };
  await part('autodiff', () => benchAutodiff());
  await part('data', () => benchData());
  await part('throughput', () => runThroughput({ profile: false }));
  await part('export', () => benchExport());
  const outDir = resolve(opts.outDir ?? 'bench/results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'bench.json'), JSON.stringify(result, null, 2) + '\n');
  if (result.throughput) writeFileSync(join(outDir, 'bench.md'), `# npm run bench (${result.date})\n\n## Throughput and memory\n\n${throughputMarkdown(result.throughput)}`);
  return result;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const only = arg('--only')?.split(',');
  const outDir = arg('--out');
  benchAll({ ...(only ? { only } : {}), ...(outDir ? { outDir } : {}) }).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
      if (Object.keys(r.errors).length) process.exitCode = 1;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
