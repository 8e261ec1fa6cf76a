/** File writes that never leave a half-written file behind. */
import { existsSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const tempName = (file: string, pid: number) => `.${file}.${pid}.tmp`;
const TEMP_RE = /^\..+\.(\d+)\.tmp$/;

/** Writes `data` to `path` through a temporary file and a rename, so readers never see half a file. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), tempName(basename(path), process.pid));
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    if (existsSync(tmp)) unlinkSync(tmp);
    // Name the file meant (a failed write() carries no path; a failed rename names the temp file).
    (e as NodeJS.ErrnoException).path = path;
    throw e;
  }
}

/** Whether a process with this PID exists (EPERM: it exists but belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files `writeFileAtomic` leaves in `dir` when its process is killed
 * mid-write (`.<name>.<pid>.tmp` whose process is gone). Returns the names removed.
 */
export function removeStaleTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = TEMP_RE.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      unlinkSync(join(dir, n));
      removed.push(n);
    } catch {
      // already gone, or not ours to remove: leave it
    }
  }
  return removed;
}
