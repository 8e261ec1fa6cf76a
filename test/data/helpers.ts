import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function tempDir(prefix = 'sff-data-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = process.env['SFF_SHARED'] ? path.resolve(process.env['SFF_SHARED']) : path.resolve(repoRoot, '../shared');
export const sharedData = path.join(sharedDir, 'data');

/** Collects all batches of an iterator, copying their contents (buffers are reused). */
export async function collect(it: AsyncIterableIterator<{ x: Float32Array; y: BigInt64Array; n: number; indices: Int32Array }>) {
  const out: { x: Float32Array; y: BigInt64Array; n: number; indices: Int32Array }[] = [];
  for await (const b of it) out.push({ x: b.x.slice(), y: b.y.slice(), n: b.n, indices: b.indices.slice() });
  return out;
}

/** An IDX file (ubyte elements): magic 0x0000 08 <rank>, big-endian dims, then the bytes. */
export function idx(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}
