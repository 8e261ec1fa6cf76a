/**
 * On-disk cache of decoded, resized uint8 images.
 *
 * File layout (little-endian):
 *   0   8 bytes  magic "SFFDCACH"
 *   8   u32      format version (CACHE_VERSION)
 *   12  u32      header JSON length L
 *   16  L bytes  header JSON: { key, count, height, width, channels, skipped }
 *   …   zero padding to a multiple of 64
 *   …   count × height × width × channels bytes, uint8 HWC, image after image
 * Files are written to a temporary name and renamed into place, so a reader never sees
 * a partial file. The name is the cache key (a hash of what was decoded and how).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const CACHE_VERSION = 1;
const MAGIC = Buffer.from('SFFDCACH', 'latin1');

export interface CacheHeader {
  key: string;
  count: number;
  height: number;
  width: number;
  channels: number;
  skipped: { index: number; path: string; reason: string }[];
}

export function defaultCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'sff-finetune');
}

/** sha256 (hex, 32 chars kept) of a JSON description of the decode job. */
export function cacheKey(description: unknown): string {
  return createHash('sha256').update(JSON.stringify({ v: CACHE_VERSION, description })).digest('hex').slice(0, 32);
}

export function cacheFile(dir: string, key: string): string {
  return path.join(dir, `${key}.sffcache`);
}

const CHUNK = 1 << 30;

/**
 * Reads a cache file into one Buffer. Returns null when the file is absent, of another
 * version or key, or does not match the expected shape (the caller then decodes again).
 */
export function readCache(
  file: string, expect: { key: string; count: number; height: number; width: number; channels: number },
): { store: Buffer; header: CacheHeader } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(16);
    if (size < 16 || fs.readSync(fd, head, 0, 16, 0) !== 16) return null;
    if (!head.subarray(0, 8).equals(MAGIC) || head.readUInt32LE(8) !== CACHE_VERSION) return null;
    const jsonLen = head.readUInt32LE(12);
    if (16 + jsonLen > size) return null;
    const jsonBuf = Buffer.alloc(jsonLen);
    fs.readSync(fd, jsonBuf, 0, jsonLen, 16);
    const header = JSON.parse(jsonBuf.toString('utf8')) as CacheHeader;
    if (
      header.key !== expect.key || header.count !== expect.count || header.height !== expect.height ||
      header.width !== expect.width || header.channels !== expect.channels
    ) return null;
    const dataOff = Math.ceil((16 + jsonLen) / 64) * 64;
    const dataLen = header.count * header.height * header.width * header.channels;
    if (dataOff + dataLen !== size) return null;
    const store = Buffer.allocUnsafeSlow(dataLen);
    let done = 0;
    while (done < dataLen) {
      const n = fs.readSync(fd, store, done, Math.min(CHUNK, dataLen - done), dataOff + done);
      if (n <= 0) return null;
      done += n;
    }
    return { store, header };
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Cache writes still in flight in this process, by final file name. */
const pendingWrites = new Map<string, Promise<string | null>>();

/**
 * Writes a cache file atomically without blocking the event loop (the bytes go out on
 * libuv's thread pool while training starts). Resolves to null or an error message.
 * Node keeps the process alive until the write finishes, unless it is killed/exit()ed;
 * such a leftover temporary file is removed by `removeStaleTemps`.
 */
export function writeCacheInBackground(file: string, header: CacheHeader, store: Uint8Array): Promise<string | null> {
  const job = (async (): Promise<string | null> => {
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    let fh: fsp.FileHandle | null = null;
    try {
      await fsp.mkdir(path.dirname(file), { recursive: true });
      const json = Buffer.from(JSON.stringify(header), 'utf8');
      const dataOff = Math.ceil((16 + json.length) / 64) * 64;
      const head = Buffer.alloc(dataOff);
      MAGIC.copy(head, 0);
      head.writeUInt32LE(CACHE_VERSION, 8);
      head.writeUInt32LE(json.length, 12);
      json.copy(head, 16);
      fh = await fsp.open(tmp, 'w');
      await fh.write(head, 0, head.length, 0);
      const step = 64 << 20;
      for (let done = 0; done < store.length;) {
        const { bytesWritten } = await fh.write(store, done, Math.min(step, store.length - done), dataOff + done);
        done += bytesWritten;
      }
      await fh.close();
      fh = null;
      await fsp.rename(tmp, file);
      return null;
    } catch (e) {
      if (fh) await fh.close().catch(() => undefined);
      await fsp.unlink(tmp).catch(() => undefined);
      return (e as Error).message;
    }
  })();
  pendingWrites.set(file, job);
  void job.finally(() => {
    if (pendingWrites.get(file) === job) pendingWrites.delete(file);
  });
  return job;
}

/** Waits for an in-process background write of `file`, if any. */
export async function awaitPendingWrite(file: string): Promise<void> {
  const p = pendingWrites.get(file);
  if (p) await p;
}

/** Removes temporary files left in `dir` by interrupted writes (older than an hour). */
export function removeStaleTemps(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const cutoff = Date.now() - 3600_000;
  for (const n of names) {
    if (!n.includes('.sffcache.tmp-')) continue;
    const p = path.join(dir, n);
    try {
      if (fs.statSync(p).mtimeMs < cutoff) fs.unlinkSync(p);
    } catch { /* ignore */ }
  }
}
