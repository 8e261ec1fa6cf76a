/**
 * Issue 15, "Unclear faults", and issue 14's Ctrl-C: signals finish cleanly with the resume command
 * (a second one exits at once), a full disk names the file and says the last checkpoint is intact,
 * a missing CUDA provider points to the install command, unsupported ops get true advice, and
 * LeakyRelu/Tanh (which have gradient rules) are accepted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { finetune } from '../../src/train/finetune.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { saveModel } from '../../src/onnx/io.js';
import { craftedCnn } from './crafted.js';
import { CLI as cli, REPO_ROOT as root, ensureCliBuilt } from '../helpers/cli.js';

const exec = promisify(execFile);
const tmp = () => mkdtempSync(join(tmpdir(), 'sff-faults-'));
const RUN = ['builtin:cnnb', '--data', 'builtin:shapes', '--image-size', '16', '--batch-size', '32', '--max-steps', '5', '--threads', '1'];

async function waitFor(path: string, ms = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!existsSync(path)) {
    if (Date.now() - t0 > ms) throw new Error(`${path} did not appear`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts the CLI, sends `signals` once the first checkpoint exists, returns exit code and stderr. */
async function interrupt(out: string, signals: NodeJS.Signals[], gapMs = 0): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('node', [cli, ...RUN, '--epochs', '50', '-o', out], { cwd: root });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await waitFor(join(out, 'checkpoint.sff'));
  for (const s of signals) {
    child.kill(s);
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  const code = await exited;
  return { code, stdout, stderr };
}

describe('signals (CLI)', () => {
  beforeAll(() => {
    ensureCliBuilt();
  }, 120_000);

  it('SIGINT: finishes the step, keeps the checkpoint, exports the best epoch so far, prints --resume (exit 130); the resume continues', async () => {
    const out = join(tmp(), 'run');
    const r = await interrupt(out, ['SIGINT']);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/SIGINT: stopping after this step, then exporting the best epoch so far/);
    const all = r.stdout + r.stderr;
    expect(all).toMatch(/interrupted: the checkpoint of epoch (\d+) is kept in .*run, and model\.onnx holds the best epoch so far \(\d+\)\. Continue with: sff-finetune --resume /);
    const epochs = Number(/checkpoint of epoch (\d+)/.exec(all)![1]);
    expect(readCheckpoint<{ epoch: number }>(join(out, 'checkpoint.sff')).header.epoch).toBe(epochs - 1);
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(epochs);
    expect(existsSync(join(out, 'model.onnx'))).toBe(true);
    expect(existsSync(join(out, '.sff-lock'))).toBe(false);
    const resumed = await exec('node', [cli, '--resume', out, '--epochs', String(epochs + 1), '--no-export'], { cwd: root });
    expect(resumed.stdout + resumed.stderr).toMatch(new RegExp(`resume from epoch ${epochs + 1}`));
  }, 180_000);

  it('SIGTERM behaves as SIGINT; a second signal exits at once with the checkpoint whole', async () => {
    const out = join(tmp(), 'run');
    const r = await interrupt(out, ['SIGTERM', 'SIGTERM'], 20);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/SIGTERM again: stopping now; the last finished epoch's checkpoint is kept/);
    expect(() => readCheckpoint(join(out, 'checkpoint.sff'))).not.toThrow();
  }, 180_000);
});

describe('disk full', () => {
  it('names the file and says the last checkpoint (epoch 1) is intact, with the resume command', async () => {
    const out = join(tmp(), 'run');
    const base = { model: 'builtin:cnnb', data: 'builtin:shapes', imageSize: 16, batchSize: 32, maxStepsPerEpoch: 2, threads: 1, quiet: true, noExport: true, out };
    await finetune({ ...base, epochs: 1 });
    // The next checkpoint write goes to /dev/full (writes fail with ENOSPC), as on a full disk.
    symlinkSync('/dev/full', join(out, `.checkpoint.sff.${process.pid}.tmp`));
    const err = await finetune({ ...base, out: undefined, model: '', data: '', resume: out, epochs: 2 }).catch((e) => e);
    expect(err.name).toBe('RunFolderError');
    expect(err.message).toMatch(new RegExp(`cannot write ${join(out, 'checkpoint.sff')}: the disk is full \\(ENOSPC\\)\\. The last checkpoint \\(epoch 1\\) in .*run is intact: fix this and continue with \`sff-finetune --resume `));
    expect(readCheckpoint<{ epoch: number }>(join(out, 'checkpoint.sff')).header.epoch).toBe(0);
  }, 120_000);
});

describe('devices and ops', () => {
  it('--device cuda without its provider points to the install command, before any work', async () => {
    const out = join(tmp(), 'run');
    const r = await exec('node', [cli, ...RUN, '--epochs', '1', '--device', 'cuda', '-o', out], { cwd: root }).catch((e) => e as { code: number; stderr: string });
    if (!('code' in r) || r.code === 0) return; // a machine with CUDA: nothing to refuse
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^sff-finetune: --device cuda cannot be used: .*ONNXRUNTIME_NODE_INSTALL=cuda12 npm install.*or use --device cpu\.$/s);
    expect(r.stderr).not.toMatch(/onnxruntime_src|provider_bridge/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('LeakyRelu and Tanh blocks import and train', async () => {
    const dir = tmp();
    saveModel(craftedCnn({ activations: ['LeakyRelu', 'Tanh'] }), join(dir, 'm.onnx'));
    const r = await finetune({ model: join(dir, 'm.onnx'), data: 'builtin:shapes', out: join(dir, 'run'), epochs: 1, batchSize: 16, maxStepsPerEpoch: 3, threads: 1, quiet: true, noExport: true });
    expect(r.history).toHaveLength(1);
    expect(r.history[0]!.train.loss.every(Number.isFinite)).toBe(true);
  }, 120_000);
});
