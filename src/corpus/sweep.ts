/**
 * `npm run corpus`: the "every graph trains" sweep over the corpus. For each graph of the
 * manifest: `inspect` with no flag (≥ 2 blocks), one short SFF epoch on a small image folder
 * (--subset 256 --epochs 1 --batch-size 16, at most --max-steps steps) at the graph's size,
 * then the exported model.onnx run by plain onnxruntime on images of that size. Results go to
 * bench/results/corpus.json after every graph (a re-run continues where it stopped, --fresh
 * starts over) and the README's family × mode × opset table to bench/results/corpus.md.
 *
 *   node dist/corpus/sweep.js [--dir fixtures/corpus] [--out bench/results] [--max-steps 4] [--threads 1] [--only substring] [--fresh] [--retry-failed]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.js';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSession } from '../runtime/session.js';
import { float32Tensor } from '../runtime/tensors.js';
import sharp from 'sharp';
import { inspectModel } from '../cli/commands/inspect.js';
import { finetune } from '../train/finetune.js';
import { readManifest, type CorpusEntry } from './derive.js';

export interface SweepResult {
  file: string;
  family: string;
  arch: string;
  mode: string;
  variant: string;
  opset: number;
  exportError?: string;
  inspect?: { ok: boolean; blocks?: number; error?: string; seconds: number };
  train?: { ok: boolean; error?: string; seconds: number; steps?: number; valAccuracy?: number; exportMaxAbsDiff?: number; ortScores?: number[] };
}

/**
 * A small labelled image folder: `classes` sub-folders of `perClass` PNGs of size×size, each
 * class a colour with a per-image stripe pattern (learnable, and cheap to decode).
 */
export async function writeTinyImageFolder(dir: string, classes: number, perClass: number, size: number): Promise<void> {
  for (let c = 0; c < classes; c++) {
    mkdirSync(join(dir, `class${c}`), { recursive: true });
    const base = [(c * 97) % 256, (c * 57 + 80) % 256, (c * 31 + 160) % 256];
    for (let i = 0; i < perClass; i++) {
      const px = Buffer.alloc(size * size * 3);
      for (let p = 0; p < size * size; p++) {
        const stripe = ((p % size) + Math.floor(p / size) * (c % 3)) % (4 + (c % 4)) < 2 ? 40 : 0;
        for (let k = 0; k < 3; k++) px[p * 3 + k] = Math.min(255, base[k]! + stripe + ((p * 7 + i * 13 + k * 31) % 23));
      }
      await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(join(dir, `class${c}`, `${i}.png`));
    }
  }
}

function fileSize(dir: string, g: CorpusEntry): number {
  return g.exportError ? 0 : statSync(join(dir, g.file)).size;
}

async function runOne(g: CorpusEntry, dir: string, data: string, opts: { maxSteps: number; threads: number }): Promise<SweepResult> {
  const r: SweepResult = { file: g.file, family: g.family, arch: g.arch, mode: g.mode, variant: g.variant, opset: g.opset };
  if (g.exportError) return { ...r, exportError: g.exportError };
  const path = join(dir, g.file);
  let t = Date.now();
  try {
    const rep = await inspectModel(path);
    r.inspect = { ok: rep.blocks.length >= 2, blocks: rep.blocks.length, seconds: (Date.now() - t) / 1000 };
  } catch (e) {
    r.inspect = { ok: false, error: (e as Error).message, seconds: (Date.now() - t) / 1000 };
  }
  t = Date.now();
  const out = mkdtempSync(join(os.tmpdir(), 'sff-corpus-'));
  try {
    const res = await finetune({
      model: path, data, subset: 256, epochs: 1, batchSize: 16, maxStepsPerEpoch: opts.maxSteps, imageSize: g.size,
      threads: opts.threads, out, quiet: true,
    });
    const s = await createSession(readFileSync(res.modelPath!));
    const x = float32Tensor(Float32Array.from({ length: 2 * 3 * g.size[0] * g.size[1] }, (_, i) => Math.sin(i)), [2, 3, ...g.size]);
    const o = await s.run({ input: x });
    await s.release();
    const scores = Array.from(o.scores!.data as Float32Array);
    const ok = o.scores!.dims.join(',') === '2,10' && scores.every(Number.isFinite);
    r.train = {
      ok,
      seconds: (Date.now() - t) / 1000,
      steps: Math.min(opts.maxSteps, 16),
      ...(res.best ? { valAccuracy: res.best.ensemble.acc } : {}),
      exportMaxAbsDiff: res.exportCheck?.maxAbsDiff,
      ortScores: o.scores!.dims as number[],
      ...(ok ? {} : { error: `onnxruntime returned scores ${o.scores!.dims.join('×')}` }),
    };
  } catch (e) {
    r.train = { ok: false, error: (e as Error).message.split('\n')[0]!.slice(0, 400), seconds: (Date.now() - t) / 1000 };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return r;
}

function cell(rs: SweepResult[]): string {
  if (!rs.length) return '–';
  return rs
    .map((r) => {
      const v = r.variant.replace(/^op\d+_/, '');
      if (r.exportError) return `${v}: not exportable¹`;
      if (!r.inspect) return `${v}: not run`;
      if (!r.inspect.ok) return `${v}: inspect ✗`;
      if (!r.train) return `${v}: inspect ✓ (${r.inspect.blocks} blocks), not trained`;
      return `${v}: ${r.train.ok ? '✓' : 'train ✗'} ${r.inspect.blocks}b`;
    })
    .join('<br>');
}

/** The README table: one row per family × mode, one column per opset; each cell lists the graphs (arch, variant) and their result. */
export function sweepTable(results: SweepResult[]): string {
  const opsets = [...new Set(results.map((r) => r.opset))].sort((a, b) => a - b);
  const keys = [...new Set(results.map((r) => `${r.family}|${r.mode}`))];
  const lines = [`| family | mode | ${opsets.map((o) => `opset ${o}`).join(' | ')} |`, `|---|---|${opsets.map(() => '---').join('|')}|`];
  for (const k of keys) {
    const [family, mode] = k.split('|');
    const row = opsets.map((o) => {
      const rs = results.filter((r) => r.family === family && r.mode === mode && r.opset === o);
      const archs = [...new Set(rs.map((r) => r.arch))];
      return archs.map((a) => `${a}: ${cell(rs.filter((r) => r.arch === a))}`).join('<br>') || '–';
    });
    lines.push(`| ${family} | ${mode} | ${row.join(' | ')} |`);
  }
  const failures = results.filter((r) => r.exportError || (r.inspect && !r.inspect.ok) || (r.train && !r.train.ok));
  const notes = failures.map((r) => `- ${r.file}: ${r.exportError ?? r.inspect?.error ?? r.train?.error}`);
  return [...lines, '', ...(notes.length ? ['Not passing:', ...notes] : ['Every graph run passed.'])].join('\n');
}

export async function sweepCorpus(opts: { dir: string; outDir: string; maxSteps: number; threads: number; only?: string; fresh?: boolean; retryFailed?: boolean; log?: (s: string) => void }): Promise<SweepResult[]> {
  const log = opts.log ?? console.log;
  mkdirSync(opts.outDir, { recursive: true });
  const jsonPath = join(opts.outDir, 'corpus.json');
  const prior: SweepResult[] = !opts.fresh && existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')) as { results: SweepResult[] }).results : [];
  const failed = (r: SweepResult) => !r.exportError && (!r.inspect?.ok || !r.train?.ok);
  const done = new Map(prior.filter((r) => !(opts.retryFailed && failed(r))).map((r) => [r.file, r]));
  const graphs = readManifest(opts.dir).graphs.filter((g) => !opts.only || g.file.includes(opts.only));
  // Coverage first, so a sweep cut short still fills the table: one graph per family, then one per
  // family × mode × variant cell (the family's smallest file), then the rest.
  const bySize = [...graphs].sort((a, b) => fileSize(opts.dir, a) - fileSize(opts.dir, b));
  const pick = (key: (g: CorpusEntry) => string) => {
    const seen = new Set<string>();
    return bySize.filter((g) => !g.exportError && !seen.has(key(g)) && seen.add(key(g)));
  };
  const order = [...new Set([...pick((g) => g.family), ...pick((g) => `${g.family}|${g.mode}|${g.variant}`), ...graphs])];
  const data = mkdtempSync(join(os.tmpdir(), 'sff-corpus-data-'));
  await writeTinyImageFolder(data, 10, 32, 64);
  const save = () => {
    const results = graphs.map((g) => done.get(g.file)).filter((r): r is SweepResult => !!r);
    const meta = { date: new Date().toISOString(), machine: { cpus: os.cpus().length, loadAverage: os.loadavg() }, maxStepsPerEpoch: opts.maxSteps, threads: opts.threads };
    writeFileAtomic(jsonPath, JSON.stringify({ ...meta, results }, null, 1));
    writeFileAtomic(join(opts.outDir, 'corpus.md'), sweepTable(results) + '\n');
  };
  try {
    for (const g of order) {
      if (done.has(g.file)) continue;
      const r = await runOne(g, opts.dir, data, opts);
      done.set(g.file, r);
      save();
      log(`${g.file.padEnd(52)} ${r.exportError ? 'not exportable' : `inspect ${r.inspect?.ok ? '✓' : '✗'} train ${r.train?.ok ? '✓' : `✗ ${r.train?.error ?? ''}`} (${(r.train?.seconds ?? 0).toFixed(0)} s)`}`);
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
    save();
  }
  return graphs.map((g) => done.get(g.file)!).filter(Boolean);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (k: string) => {
    const i = process.argv.indexOf(`--${k}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  await sweepCorpus({
    dir: resolve(arg('dir') ?? 'fixtures/corpus'),
    outDir: resolve(arg('out') ?? 'bench/results'),
    maxSteps: Number(arg('max-steps') ?? 4),
    threads: Number(arg('threads') ?? 1),
    ...(arg('only') ? { only: arg('only')! } : {}),
    fresh: process.argv.includes('--fresh'),
    retryFailed: process.argv.includes('--retry-failed'),
  });
}
