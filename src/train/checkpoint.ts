/**
 * Checkpoints: one file holding a JSON header and float32 arrays, written to a
 * temporary file and renamed, so a crash mid-write never loses the last good one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.js';

const MAGIC = 'SFFCKPT1';

export interface Checkpoint<H> {
  header: H;
  arrays: Record<string, Float32Array>;
}

export function writeCheckpoint<H>(path: string, ckpt: Checkpoint<H>): void {
  const index: { key: string; offset: number; length: number }[] = [];
  let offset = 0;
  for (const [key, a] of Object.entries(ckpt.arrays)) {
    index.push({ key, offset, length: a.length });
    offset += a.length * 4;
  }
  const json = Buffer.from(JSON.stringify({ header: ckpt.header, index }), 'utf8');
  const pad = (4 - ((MAGIC.length + 4 + json.length) % 4)) % 4;
  const head = Buffer.alloc(MAGIC.length + 4);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length + pad, MAGIC.length);
  const parts: Uint8Array[] = [head, json, Buffer.alloc(pad, 0x20)];
  for (const a of Object.values(ckpt.arrays)) parts.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  writeFileAtomic(path, Buffer.concat(parts));
}

export function readCheckpoint<H>(path: string): Checkpoint<H> {
  if (!existsSync(path)) throw new Error(`${path}: no checkpoint here (a run writes one after its first finished epoch)`);
  const buf = readFileSync(path);
  if (buf.length < MAGIC.length + 4 || buf.toString('latin1', 0, MAGIC.length) !== MAGIC)
    throw new Error(`${path}: not an sff-finetune checkpoint`);
  const len = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  const { header, index } = JSON.parse(buf.toString('utf8', start, start + len)) as { header: H; index: { key: string; offset: number; length: number }[] };
  const dataStart = start + len;
  const arrays: Record<string, Float32Array> = {};
  for (const e of index) {
    const from = dataStart + e.offset;
    if (from + e.length * 4 > buf.length) throw new Error(`${path}: checkpoint is truncated (array '${e.key}')`);
    arrays[e.key] = new Float32Array(buf.buffer.slice(buf.byteOffset + from, buf.byteOffset + from + e.length * 4));
  }
  return { header, arrays };
}
