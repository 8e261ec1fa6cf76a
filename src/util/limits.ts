/**
 * Resource limits checked before allocating: files must be regular files of a bounded size, and
 * allocations that scale with declared shapes are compared with the memory this process may use.
 * SFF_MEMORY_LIMIT_MB overrides the memory budget (a smaller machine share, or tests).
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import os from 'node:os';

/** A request for more file, tensor or memory than is available (the message says what to change). */
export class LimitError extends Error {
  override name = 'LimitError';
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Bytes this process may plan to allocate: SFF_MEMORY_LIMIT_MB, else 3/4 of physical memory (or of the cgroup limit when lower). */
export function memoryBudget(): number {
  const env = Number(process.env.SFF_MEMORY_LIMIT_MB);
  if (Number.isFinite(env) && env > 0) return env * 2 ** 20;
  const constrained = process.constrainedMemory?.() ?? 0;
  const total = os.totalmem();
  const limit = constrained > 0 && constrained < total ? constrained : total;
  return 0.75 * limit;
}

/** Throws LimitError when `bytes` (what `what` would take) exceed the memory budget. */
export function checkMemory(bytes: number, what: string, advice: string): void {
  const budget = memoryBudget();
  if (!(bytes <= budget))
    throw new LimitError(`${what} would need about ${formatBytes(bytes)}, more than the ${formatBytes(budget)} this process may use. ${advice}`);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Stats `path` and refuses anything but a regular file of at most `maxBytes` (pipes and devices
 * would block or never end). `makeError` builds the error (the caller's own error type).
 */
export function checkRegularFile(path: string, maxBytes: number, makeError: (message: string) => Error): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    throw makeError('no such file');
  }
  if (!st.isFile()) throw makeError(`is ${kindOf(st)}; give a regular file`);
  if (st.size > maxBytes) throw makeError(`is ${formatBytes(st.size)}, over the ${formatBytes(maxBytes)} this tool reads for it`);
  return st;
}

/** `checkRegularFile`, then the file's bytes. */
export function readRegularFile(path: string, maxBytes: number, makeError: (message: string) => Error): Buffer {
  checkRegularFile(path, maxBytes, makeError);
  return readFileSync(path);
}
