/**
 * Data-pipeline benchmark: images/s delivered by `batches()` to a consumer, cold (first
 * pass including decode into an empty cache) and warm (cache read back), for
 * shared/data/imagenette-train-3000 at 224×224 (batch 64) and shared/data/cifar10-train at
 * 32×32 (batch 128). Targets: warm ≥ 2,000 img/s at 224 and ≥ 20,000 img/s at 32.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/data.js [sharedDir]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { batches, prepareData, type ImageSet } from '../data/index.js';
import { round } from '../util/stats.js';

function defaultSharedDir(): string {
  if (process.env['SFF_SHARED']) return path.resolve(process.env['SFF_SHARED']);
  const here = path.dirname(fileURLToPath(import.meta.url)); // src/bench or dist/bench
  return path.resolve(here, '../../../shared');
}

/** One pass over `set`; the consumer reads every batch (sums a strided sample of x). */
async function pass(set: ImageSet, batchSize: number, epoch: number, mean: number[], std: number[], augment = false) {
  const t0 = performance.now();
  let n = 0;
  let sink = 0;
  for await (const b of batches(set, { batchSize, shuffle: true, seed: 0, epoch, augment, mean, std })) {
    for (let k = 0; k < b.x.length; k += 4099) sink += b.x[k]!;
    n += b.n;
  }
  const s = (performance.now() - t0) / 1000;
  return { images: n, seconds: round(s, 3), imgPerSec: round(n / s), sink: Number.isFinite(sink) };
}

async function benchOne(name: string, dir: string, size: number, batchSize: number, target: number) {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sff-bench-cache-'));
  try {
    const opts = { path: dir, imageSize: [size, size] as [number, number], channels: 3, cacheDir };
    let t0 = performance.now();
    const cold = await prepareData(opts);
    const coldPrepare = (performance.now() - t0) / 1000;
    const total = cold.train.count + cold.val.count + cold.skipped.length;
    // The first epoch runs while the cache file is written in the background.
    const coldPass = await pass(cold.train, batchSize, 0, cold.preprocess.mean, cold.preprocess.std);
    t0 = performance.now();
    await cold.cacheWritten;
    const cacheWaitSeconds = (performance.now() - t0) / 1000;
    const cacheBytes = cold.cacheFiles.reduce((s, f) => s + fs.statSync(f).size, 0);

    t0 = performance.now();
    const warm = await prepareData(opts);
    const warmPrepare = (performance.now() - t0) / 1000;
    const warmPass = await pass(warm.train, batchSize, 0, warm.preprocess.mean, warm.preprocess.std);
    const warmPass2 = await pass(warm.train, batchSize, 1, warm.preprocess.mean, warm.preprocess.std);
    const augPass = await pass(warm.train, batchSize, 2, warm.preprocess.mean, warm.preprocess.std, true);
    return {
      dataset: name, imageSize: size, batchSize, images: total, trainImages: cold.train.count,
      skipped: cold.skipped.length,
      cold: {
        prepareSeconds: round(coldPrepare, 2), decodeImgPerSec: round(total / coldPrepare),
        firstPassImgPerSec: coldPass.imgPerSec, cacheWriteWaitAfterPassSeconds: round(cacheWaitSeconds, 2),
        endToEndImgPerSec: round(coldPass.images / (coldPrepare + coldPass.seconds)),
      },
      warm: {
        cacheHit: warm.cacheHit, cacheMB: round(cacheBytes / 2 ** 20, 1),
        prepareSeconds: round(warmPrepare, 2), loadImgPerSec: round(total / warmPrepare),
        batchesImgPerSec: warmPass.imgPerSec, batchesImgPerSecSecondEpoch: warmPass2.imgPerSec,
        batchesImgPerSecAugment: augPass.imgPerSec,
        endToEndImgPerSec: round(warmPass.images / (warmPrepare + warmPass.seconds)),
      },
      targetImgPerSec: target,
      meetsTarget: Math.min(warmPass.imgPerSec, warmPass2.imgPerSec) >= target,
    };
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

export async function benchData(opts: { sharedDir?: string } = {}): Promise<Record<string, unknown>> {
  const shared = opts.sharedDir ?? defaultSharedDir();
  const out: Record<string, unknown> = {
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
    sharedDir: shared,
  };
  const jobs: [string, string, number, number, number][] = [
    ['imagenette-train-3000', path.join(shared, 'data', 'imagenette-train-3000'), 224, 64, 2000],
    ['cifar10-train', path.join(shared, 'data', 'cifar10-train'), 32, 128, 20000],
  ];
  for (const [name, dir, size, bs, target] of jobs) {
    if (!fs.existsSync(dir)) {
      out[name] = { skipped: `${dir} absent` };
      continue;
    }
    out[name] = await benchOne(name, dir, size, bs, target);
  }
  return out;
}

const entry = process.argv[1] ?? '';
if (entry.endsWith('data.js') || entry.endsWith(path.join('bench', 'data.ts'))) {
  const arg = process.argv[2];
  benchData(arg ? { sharedDir: path.resolve(arg) } : {}).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => { console.error(e); process.exitCode = 1; },
  );
}
