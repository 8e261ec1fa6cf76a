/**
 * The run folder (--out) as something one run owns: created with a clear error when it cannot be,
 * locked against a second writer, refused when it already holds a run or other files (unless
 * resuming or overwriting), never the place an input lives; and the configuration a resumed run
 * keeps, compared with the options given again.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, accessSync, constants, writeSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { processAlive, removeStaleTempFiles } from '../util/fs.js';
import { samePath } from '../util/paths.js';
import { readCheckpoint } from './checkpoint.js';
import type { FinetuneOptions, RunConfig } from './options.js';

/** A run folder that cannot be used as asked (the message says why and what to do). */
export class RunFolderError extends Error {
  override name = 'RunFolderError';
}

export const LOCK_FILE = '.sff-lock';
export const CHECKPOINT_NAME = 'checkpoint.sff';

/**
 * What a run writes into its folder: the only entries `--overwrite` removes (anything else in the
 * folder is the user's and is left alone).
 */
export const RUN_ARTIFACTS = [
  CHECKPOINT_NAME, 'metrics.jsonl', 'metrics.csv', 'curves.svg', 'report.html', 'config.json', 'model.onnx', 'model.onnx.data', 'model.json', 'blocks',
];

/** The command that continues the run in `dir`. */
export function resumeCommand(dir: string): string {
  const shown = relative(process.cwd(), dir) || '.';
  const arg = shown.startsWith('..') || isAbsolute(shown) ? dir : shown;
  return `sff-finetune --resume ${/[\s'"$`\\]/.test(arg) ? `'${arg.replace(/'/g, `'\\''`)}'` : arg}`;
}

const FS_REASONS: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  EMFILE: 'too many open files',
};

/** The nearest ancestor of `p` that exists. */
function nearestExisting(p: string): string {
  let d = resolve(p);
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

function mkdirOrExplain(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    // Node's recursive mkdir can report ENOENT where a parent is not writable: say what is wrong.
    const parent = nearestExisting(dir);
    let why = FS_REASONS[code] ?? (e as Error).message;
    try {
      accessSync(parent, constants.W_OK);
    } catch {
      why = `${parent} is not writable`;
    }
    throw new RunFolderError(`cannot create the output folder ${dir}: ${why}. Choose another --out.`);
  }
}

interface LockRecord {
  pid: number;
  host: string;
  started: string;
}

function readLock(path: string): LockRecord | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockRecord;
  } catch {
    return undefined;
  }
}

/** A held run folder: `release` removes the lock (also done at process exit). */
export interface RunFolder {
  dir: string;
  release(): void;
}

/**
 * Takes the lock file of `dir` (created exclusively; one left by a process that no longer runs on
 * this host is taken over). A live holder is named by PID.
 */
function lock(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  const record: LockRecord = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(record));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = readLock(path);
      const stale = held && held.host === record.host && !processAlive(held.pid);
      if (held && !stale)
        throw new RunFolderError(
          `${dir} is in use by another sff-finetune run (PID ${held.pid}${held.host !== record.host ? ` on ${held.host}` : ''}, started ${held.started}). ` +
            `Wait for it to finish or choose another --out; if that process is gone, delete ${path}.`,
        );
      // A stale lock (its process is gone), or one being written this instant: take over / retry once.
      if (attempt > 2) throw new RunFolderError(`${dir}: cannot take the lock ${path}; delete it if no run is using the folder`);
      if (stale || !held) rmSync(path, { force: true });
    }
  }
  const release = () => {
    if (readLock(path)?.pid === process.pid) unlinkSync(path);
  };
  process.once('exit', release);
  return () => {
    process.removeListener('exit', release);
    try {
      release();
    } catch {
      // the folder went away: nothing to release
    }
  };
}

/**
 * Opens `out` for a run: creates it, refuses to write where an input lives, takes the lock, removes
 * temp files of interrupted writes, and (neither resuming nor overwriting) refuses a folder that
 * holds a run or other files. With `overwrite`, the previous run's artifacts are removed.
 */
export function openRunFolder(opts: { out: string; resume: boolean; overwrite: boolean; inputs: string[]; log: (s: string) => void }): RunFolder {
  const dir = resolve(opts.out);
  for (const input of opts.inputs) {
    if (input.startsWith('builtin:')) continue;
    const clash = RUN_ARTIFACTS.find((name) => samePath(join(dir, name), input));
    if (clash)
      throw new RunFolderError(`--out ${dir} would write ${clash} over the input ${resolve(input)}. Choose another --out (the default is artifacts/<model name>).`);
  }
  mkdirOrExplain(dir);
  const release = lock(dir);
  try {
    for (const stale of removeStaleTempFiles(dir)) opts.log(`removed ${stale}, left by an interrupted write of an earlier run`);
    if (!opts.resume) {
      const entries = readdirSync(dir).filter((n) => n !== LOCK_FILE);
      // A run that failed before its first checkpoint left only its own files: nothing to lose.
      const unfinished = !entries.includes(CHECKPOINT_NAME) && entries.every((n) => RUN_ARTIFACTS.includes(n));
      if (entries.length && !opts.overwrite && !unfinished) {
        if (entries.includes(CHECKPOINT_NAME))
          throw new RunFolderError(
            `${dir} already holds a run (${CHECKPOINT_NAME}). Continue it with \`${resumeCommand(dir)}\`, replace it with --overwrite, or choose another --out.`,
          );
        throw new RunFolderError(
          `${dir} is not empty (${entries.slice(0, 4).join(', ')}${entries.length > 4 ? ', …' : ''}). Choose a new or empty --out, or --overwrite to replace a run there.`,
        );
      }
      if (opts.overwrite || unfinished)
        for (const name of RUN_ARTIFACTS)
          if (existsSync(join(dir, name))) {
            rmSync(join(dir, name), { recursive: true, force: true });
            opts.log(`${opts.overwrite ? '--overwrite' : 'no checkpoint (an earlier run stopped before its first epoch)'}: removed ${join(dir, name)}`);
          }
    } else if (!existsSync(join(dir, CHECKPOINT_NAME))) {
      throw new RunFolderError(`${dir}: no checkpoint to resume (a run writes one after its first finished epoch). Start a new run instead.`);
    }
  } catch (e) {
    release();
    throw e;
  }
  return { dir, release };
}

// ---------------------------------------------------------------------------------------------
// Paths recorded relative to the run folder

const PATH_KEYS = ['model', 'data', 'testData'] as const;

function isBuiltin(p: string): boolean {
  return p.startsWith('builtin:');
}

/** The configuration as stored in the run folder: input paths relative to it, so the folder can move. */
export function storedConfig(cfg: RunConfig, dir: string): RunConfig {
  const out = { ...cfg, out: '.' };
  for (const k of PATH_KEYS) {
    const v = cfg[k];
    if (v !== undefined && !isBuiltin(v)) out[k] = relative(dir, resolve(v)) || '.';
  }
  return out;
}

/** A stored configuration read back from `dir`: paths resolved against it, `out` = `dir`. */
export function loadedConfig(stored: RunConfig, dir: string): RunConfig {
  const out = { ...stored, out: dir };
  for (const k of PATH_KEYS) {
    const v = stored[k];
    // Checkpoints written before paths were stored relative hold absolute (or working-folder) paths.
    if (v !== undefined && !isBuiltin(v) && !isAbsolute(v)) out[k] = resolve(dir, v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Options given again on --resume

/** Options that change what is trained: given on resume, they must equal the run's. */
const FIXED: { key: keyof FinetuneOptions & keyof RunConfig; flag: string }[] = [
  { key: 'method', flag: '--method' }, { key: 'batchSize', flag: '--batch-size' }, { key: 'lr', flag: '--lr' },
  { key: 'weightDecay', flag: '--weight-decay' }, { key: 'bnMomentum', flag: '--bn-momentum' }, { key: 'seed', flag: '--seed' },
  { key: 'ensemble', flag: '--ensemble' }, { key: 'norm', flag: '--norm' }, { key: 'auxKernel', flag: '--aux-kernel' },
  { key: 'blocks', flag: '--blocks' }, { key: 'freeze', flag: '--freeze' }, { key: 'normalize', flag: '--normalize' },
  { key: 'augment', flag: '--augment' }, { key: 'subset', flag: '--subset' }, { key: 'valFraction', flag: '--val-fraction' },
  { key: 'lrPatience', flag: '--lr-patience' }, { key: 'stopPatience', flag: '--stop-patience' }, { key: 'maxStepsPerEpoch', flag: '--max-steps' },
];

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The configuration a resumed run continues with: the checkpoint's, in `dir`, with `--epochs` and
 * inputs that moved taken from `opts`. Any other option given with a different value is refused,
 * naming it (a resumed run that silently ignored a new --lr would not be the run asked for).
 */
export function resumedConfig(prior: RunConfig, opts: FinetuneOptions, dir: string): RunConfig {
  const cfg = loadedConfig(prior, dir);
  const differences: string[] = [];
  for (const { key, flag } of FIXED) {
    const given = opts[key];
    if (given === undefined || (key === 'auxKernel' && given === 'auto') || (key === 'ensemble' && given === 'auto') || (key === 'norm' && given === 'auto')) continue;
    if (!same(given, prior[key])) differences.push(`${flag} ${JSON.stringify(given)} (the run has ${JSON.stringify(prior[key]) ?? 'none'})`);
  }
  // Head pooling: absent in the run's configuration means off.
  if (opts.headPool !== undefined && !same(opts.headPool === 'off' ? undefined : opts.headPool, prior.headPool))
    differences.push(`--head-pool ${JSON.stringify(opts.headPool)} (the run has ${JSON.stringify(prior.headPool ?? 'off')})`);
  if (opts.imageSize !== undefined && !same([opts.imageSize, opts.imageSize], prior.imageSize))
    differences.push(`--image-size ${opts.imageSize} (the run has ${prior.imageSize.join('×')})`);
  for (const [key, flag] of [['model', 'the model'], ['data', '--data'], ['testData', '--test']] as const) {
    const given = opts[key];
    const recorded = cfg[key];
    if (given === undefined || recorded === undefined) continue;
    if (isBuiltin(given) || isBuiltin(recorded) ? given === recorded : samePath(given, recorded)) continue;
    // The recorded input is gone (the run or its inputs moved): the one given now is honoured;
    // the class list and every block's shapes are still checked against the checkpoint.
    if (!isBuiltin(recorded) && !existsSync(recorded)) cfg[key] = resolve(given);
    else differences.push(`${flag} ${given} (the run uses ${recorded})`);
  }
  if (differences.length)
    throw new RunFolderError(
      `--resume ${dir}: ${differences.join('; ')}. A resumed run keeps its configuration (only --epochs, and inputs that moved, may change). ` +
        'Drop these options, or start a new run with another --out (or --overwrite).',
    );
  if (opts.epochs !== undefined) cfg.epochs = opts.epochs;
  return cfg;
}

// ---------------------------------------------------------------------------------------------
// Faults while writing

/**
 * An error from writing `file` (disk full, permissions, read-only) as a RunFolderError that names
 * the file and says the last checkpoint is intact (checkpoints are written to a temporary file and
 * renamed, so a failed write never damages the previous one). Other errors pass through.
 */
export function explainWriteFault(e: unknown, dir: string): unknown {
  const err = e as NodeJS.ErrnoException;
  const reason = err?.code ? FS_REASONS[err.code] : undefined;
  if (!reason || err instanceof RunFolderError) return e;
  const file = err.path ?? dir;
  // Read back (checksum verified) rather than assumed: the message says what is really on disk.
  let lastEpoch = 0;
  try {
    lastEpoch = readCheckpoint<{ epoch: number }>(join(dir, CHECKPOINT_NAME)).header.epoch + 1;
  } catch {
    // none, or not usable: said below
  }
  const kept = lastEpoch > 0
    ? `The last checkpoint (epoch ${lastEpoch}) in ${dir} is intact: fix this and continue with \`${resumeCommand(dir)}\`.`
    : 'No checkpoint was written yet, so there is nothing to resume; fix this and start again.';
  return new RunFolderError(`cannot write ${file}: ${reason} (${err.code}). ${kept}`);
}
