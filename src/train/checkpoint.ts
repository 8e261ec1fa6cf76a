/**
 * Checkpoints: one file holding a JSON header and float32 arrays, written to a temporary file and
 * renamed, so a crash mid-write never loses the last good one.
 *
 * Layout (format 2, little-endian):
 *   0   8 bytes  magic "SFFCKPT2"
 *   8   u32      length L of the header JSON (space-padded so the arrays start 4-aligned)
 *   12  L bytes  { format, header, index: [{ key, offset, length }] }
 *   …   the arrays' float32 bytes, in index order
 *   end 32 bytes sha256 of everything before it
 * The checksum covers header and tensors: a flipped bit anywhere is reported as corruption
 * instead of loading weights that later turn into NaN. Format 1 files ("SFFCKPT1", no checksum)
 * are still read.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.js';
import { readRegularFile } from '../util/limits.js';

export const CHECKPOINT_FORMAT = 2;
const MAGIC_V1 = 'SFFCKPT1';
const MAGIC = 'SFFCKPT2';
const PREFIX = MAGIC.length + 4;
const DIGEST = 32;
/** Checkpoints hold a model's weights and two Adam moments: far below this. */
const MAX_CHECKPOINT_BYTES = 16 * 2 ** 30;

/** A checkpoint that cannot be used: missing, not a checkpoint, truncated, corrupt or from a newer version. */
export class CheckpointError extends Error {
  constructor(readonly file: string, readonly kind: 'missing' | 'foreign' | 'truncated' | 'corrupt' | 'version', message: string) {
    super(`${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

export interface Checkpoint<H> {
  header: H;
  arrays: Record<string, Float32Array>;
}

interface IndexEntry {
  key: string;
  offset: number;
  length: number;
}

export function writeCheckpoint<H>(path: string, ckpt: Checkpoint<H>): void {
  const index: IndexEntry[] = [];
  let offset = 0;
  for (const [key, a] of Object.entries(ckpt.arrays)) {
    index.push({ key, offset, length: a.length });
    offset += a.length * 4;
  }
  const json = Buffer.from(JSON.stringify({ format: CHECKPOINT_FORMAT, header: ckpt.header, index }), 'utf8');
  const pad = (4 - ((PREFIX + json.length) % 4)) % 4;
  const head = Buffer.alloc(PREFIX);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length + pad, MAGIC.length);
  const parts: Uint8Array[] = [head, json, Buffer.alloc(pad, 0x20)];
  for (const a of Object.values(ckpt.arrays)) parts.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const body = Buffer.concat(parts);
  writeFileAtomic(path, Buffer.concat([body, createHash('sha256').update(body).digest()]));
}

const RECOVER = 'Resume from an intact copy, or start the run again with --overwrite.';

function parseIndex(path: string, text: string): { header: unknown; index: IndexEntry[]; format?: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CheckpointError(path, 'corrupt', `the checkpoint header is corrupt (not valid JSON). ${RECOVER}`);
  }
  const p = parsed as { header?: unknown; index?: unknown; format?: unknown };
  const okIndex =
    Array.isArray(p?.index) &&
    p.index.every((e: IndexEntry) => e && typeof e.key === 'string' && Number.isSafeInteger(e.offset) && e.offset >= 0 && Number.isSafeInteger(e.length) && e.length >= 0);
  if (typeof p !== 'object' || p === null || !('header' in p) || !okIndex)
    throw new CheckpointError(path, 'corrupt', `the checkpoint header is corrupt (missing or malformed fields). ${RECOVER}`);
  return { header: p.header, index: p.index as IndexEntry[], ...(typeof p.format === 'number' ? { format: p.format } : {}) };
}

export function readCheckpoint<H>(path: string): Checkpoint<H> {
  if (!existsSync(path)) throw new CheckpointError(path, 'missing', 'no checkpoint here (a run writes one after its first finished epoch)');
  const buf = readRegularFile(path, MAX_CHECKPOINT_BYTES, (m) => new CheckpointError(path, 'foreign', m));
  const magic = buf.length >= MAGIC.length ? buf.toString('latin1', 0, MAGIC.length) : '';
  if (magic !== MAGIC && magic !== MAGIC_V1) {
    if (/^SFFCKPT\d$/.test(magic))
      throw new CheckpointError(path, 'version', `checkpoint format ${magic.slice(7)} is newer than this sff-finetune reads (${CHECKPOINT_FORMAT}); update sff-finetune`);
    throw new CheckpointError(path, 'foreign', 'not an sff-finetune checkpoint');
  }
  const checked = magic === MAGIC;
  if (buf.length < PREFIX + (checked ? DIGEST : 0)) throw new CheckpointError(path, 'truncated', `checkpoint is truncated (${buf.length} bytes). ${RECOVER}`);
  const len = buf.readUInt32LE(MAGIC.length);
  const end = checked ? buf.length - DIGEST : buf.length;
  if (PREFIX + len > end) throw new CheckpointError(path, 'truncated', `checkpoint is truncated (its header says ${len} bytes, ${end - PREFIX} present). ${RECOVER}`);
  if (checked) {
    const { index } = parseIndex(path, buf.toString('utf8', PREFIX, PREFIX + len));
    const needed = PREFIX + len + index.reduce((a, e) => a + e.length * 4, 0);
    if (needed > end) throw new CheckpointError(path, 'truncated', `checkpoint is truncated (${buf.length} bytes, ${needed + DIGEST} expected). ${RECOVER}`);
    const digest = createHash('sha256').update(buf.subarray(0, end)).digest();
    if (!digest.equals(buf.subarray(end)))
      throw new CheckpointError(path, 'corrupt', `checkpoint is corrupt: its checksum does not match its contents (damaged on disk or in a copy). ${RECOVER}`);
  }
  const { header, index, format } = parseIndex(path, buf.toString('utf8', PREFIX, PREFIX + len));
  if (format !== undefined && format > CHECKPOINT_FORMAT)
    throw new CheckpointError(path, 'version', `checkpoint format ${format} is newer than this sff-finetune reads (${CHECKPOINT_FORMAT}); update sff-finetune`);
  const dataStart = PREFIX + len;
  const arrays: Record<string, Float32Array> = {};
  for (const e of index) {
    const from = dataStart + e.offset;
    if (from + e.length * 4 > end) throw new CheckpointError(path, 'truncated', `checkpoint is truncated (array '${e.key}'). ${RECOVER}`);
    arrays[e.key] = new Float32Array(buf.buffer.slice(buf.byteOffset + from, buf.byteOffset + from + e.length * 4));
  }
  return { header: header as H, arrays };
}
