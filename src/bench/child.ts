/**
 * Child processes for benchmarks: each measured run gets its own process, so the
 * OS high-water mark of resident memory (`maxRSS`) is that run's alone.
 *
 * A child is `node <entry> --bench-child <json>`; it prints one line
 * `@@BENCH-RESULT <json>` on stdout, the rest of its output goes to a log.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const RESULT_MARK = '@@BENCH-RESULT ';

export interface ChildOptions {
  /** Extra environment (e.g. glibc malloc tunables, which must be set before the process starts). */
  env?: Record<string, string>;
  /** Where the child's stdout and stderr go (appended); nothing kept when absent. */
  logFile?: string;
  /** Kill the child after this many seconds. */
  timeoutSeconds?: number;
}

export class ChildFailedError extends Error {
  override name = 'ChildFailedError';
}

/** Runs `node entry --bench-child <json(payload)>` and returns the object it reported. */
export function runChild<T>(entry: string, payload: unknown, opts: ChildOptions = {}): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [entry, '--bench-child', JSON.stringify(payload)], {
      env: { ...process.env, ...(opts.env ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log: ReturnType<typeof createWriteStream> | undefined;
    if (opts.logFile) {
      mkdirSync(dirname(opts.logFile), { recursive: true });
      log = createWriteStream(opts.logFile, { flags: 'a' });
    }
    let result: T | undefined;
    let pending = '';
    let tail = '';
    const keepTail = (s: string) => {
      tail = (tail + s).slice(-4000);
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith(RESULT_MARK)) result = JSON.parse(line.slice(RESULT_MARK.length)) as T;
        else {
          log?.write(line + '\n');
          keepTail(line + '\n');
        }
      }
    });
    child.stderr.on('data', (chunk: string) => {
      log?.write(chunk);
      keepTail(chunk);
    });
    const timer = opts.timeoutSeconds ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutSeconds * 1000) : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (pending.startsWith(RESULT_MARK)) result = JSON.parse(pending.slice(RESULT_MARK.length)) as T;
      log?.end();
      if (code === 0 && result !== undefined) resolvePromise(result);
      else reject(new ChildFailedError(`benchmark child ${entry} failed (${signal ? `signal ${signal}` : `exit code ${code}`})${tail ? `:\n${tail.trim().split('\n').slice(-15).join('\n')}` : ''}`));
    });
  });
}

/** In a child: when argv asks for `--bench-child`, runs `fn` on the payload, prints its result and exits. */
export function childMain<P, R>(fn: (payload: P) => Promise<R>): boolean {
  const at = process.argv.indexOf('--bench-child');
  if (at < 0) return false;
  const payload = JSON.parse(process.argv[at + 1] ?? '{}') as P;
  fn(payload).then(
    (r) => {
      process.stdout.write(RESULT_MARK + JSON.stringify(r) + '\n', () => process.exit(0));
    },
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exit(1);
    },
  );
  return true;
}

/** Peak resident memory of this process so far (MB). */
export function maxRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Current resident memory (MB). */
export function rssMB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/**
 * Linux: resets the process's resident-memory high-water mark (VmHWM) by writing 5 to
 * /proc/self/clear_refs, so a later `hwmMB()` covers only what ran since. False where unsupported.
 * (`process.resourceUsage().maxRSS` may keep the older peak.)
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** VmHWM from /proc/self/status (MB): the peak since start or since `resetPeakRss()`; NaN where unavailable. */
export function hwmMB(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
