/**
 * The size a dataset's images share, if they share one: the default input size for a model whose
 * height/width are symbolic. Raw formats (CIFAR, IDX) have one size by construction; for an image
 * folder every file's header is read (no decoding). The synthetic dataset renders at any size.
 */
import sharp from 'sharp';
import { loadSource } from './prepare.js';
import { runPool } from '../util/pool.js';
import type { SourcePart } from './source.js';

export interface CommonImageSize {
  size: [number, number];
  /** Words for messages: "the 50000 images of /data/cifar". */
  source: string;
}

async function partSize(part: SourcePart): Promise<[number, number] | null | undefined> {
  if (part.kind === 'generated') return undefined;
  if (part.kind === 'raw') return [part.height, part.width];
  let size: [number, number] | undefined;
  let mixed = false;
  await runPool(part.files.length, 16, async (i) => {
    if (mixed) return;
    const m = await sharp(part.files[i]!).metadata().catch(() => undefined);
    if (!m?.height || !m.width) return; // unreadable files are reported by prepareData
    if (!size) size = [m.height, m.width];
    else if (size[0] !== m.height || size[1] !== m.width) mixed = true;
  });
  return mixed ? null : size;
}

/** The one size of every training (and test) image at `path`, or undefined when they differ or have none. */
export async function commonImageSize(path: string): Promise<CommonImageSize | undefined> {
  const src = loadSource(path);
  const parts = [src.train, ...(src.test ? [src.test] : [])];
  let size: [number, number] | undefined;
  for (const p of parts) {
    const s = await partSize(p);
    if (!s) return undefined;
    if (size && (size[0] !== s[0] || size[1] !== s[1])) return undefined;
    size = s;
  }
  const count = parts.reduce((a, p) => a + p.labels.length, 0);
  return size ? { size, source: `the ${count} images of ${src.location}` } : undefined;
}
