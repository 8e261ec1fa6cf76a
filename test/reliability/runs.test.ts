/**
 * Issue 15, "Outputs unprotected" and "Resume trusts the checkpoint over the user", through the
 * CLI as a user drives it: one writer per run folder, finished or non-empty folders refused unless
 * --resume/--overwrite, inputs never overwritten, --resume DIR writes to DIR, options given on
 * resume honoured or refused, runs resumable after moving and from another working folder.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { saveModel } from '../../src/onnx/io.js';
import { LOCK_FILE, resumeCommand } from '../../src/train/runFolder.js';
import { craftedCnn } from './crafted.js';
import { CLI as cli, REPO_ROOT as root, ensureCliBuilt } from '../helpers/cli.js';

const exec = promisify(execFile);
const QUICK = ['--data', 'builtin:shapes', '--image-size', '16', '--batch-size', '32', '--max-steps', '2', '--threads', '1', '--epochs', '1', '--no-export'];

async function sff(args: string[], cwd = root): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const r = await exec('node', [cli, ...args], { cwd });
    return { status: 0, ...r };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { status: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const tmp = (p = 'sff-runs-') => mkdtempSync(join(tmpdir(), p));
const lines = (f: string) => readFileSync(f, 'utf8').trim().split('\n').length;

describe('run folders (CLI)', () => {
  beforeAll(() => {
    ensureCliBuilt();
  }, 120_000);

  it('a finished run is not replaced by a second run; --overwrite replaces it; other files are kept', async () => {
    const out = join(tmp(), 'run');
    expect((await sff(['builtin:cnnb', ...QUICK, '-o', out])).status).toBe(0);
    const before = statSync(join(out, 'checkpoint.sff')).mtimeMs;
    const again = await sff(['builtin:cnnb', ...QUICK, '-o', out]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already holds a run \(checkpoint\.sff\)\. Continue it with `sff-finetune --resume .*run`, replace it with --overwrite/);
    expect(statSync(join(out, 'checkpoint.sff')).mtimeMs).toBe(before);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const over = await sff(['builtin:cnnb', ...QUICK, '-o', out, '--overwrite']);
    expect(over.status).toBe(0);
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine');
    expect(lines(join(out, 'metrics.jsonl'))).toBe(1);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  }, 120_000);

  it('a non-empty folder that is not a run is refused', async () => {
    const out = tmp();
    writeFileSync(join(out, 'photo.jpg'), 'x');
    const r = await sff(['builtin:cnnb', ...QUICK, '-o', out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is not empty \(photo\.jpg\)\. Choose a new or empty --out, or --overwrite/);
  }, 60_000);

  it('a second writer is refused with the holder\'s PID; a stale lock of a dead process is taken over', async () => {
    const out = join(tmp(), 'run');
    const first = spawn('node', [cli, 'builtin:cnnb', ...QUICK.slice(0, -3), '--epochs', '50', '-o', out], { cwd: root, stdio: 'ignore' });
    const t0 = Date.now();
    while (!existsSync(join(out, LOCK_FILE)) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 50));
    const second = await sff(['builtin:cnnb', ...QUICK, '-o', out, '--overwrite']);
    first.kill('SIGKILL');
    await new Promise((r) => first.on('exit', r));
    expect(second.status).toBe(2);
    expect(second.stderr).toContain(`is in use by another sff-finetune run (PID ${first.pid}`);
    // The killed run left its lock behind: a new run may take over the folder.
    expect(existsSync(join(out, LOCK_FILE))).toBe(true);
    const third = await sff(['builtin:cnnb', ...QUICK, '-o', out, '--overwrite']);
    expect(third.status, third.stderr).toBe(0);
  }, 120_000);

  it('-o . beside the input model.onnx is refused instead of overwriting the input', async () => {
    const dir = tmp();
    saveModel(craftedCnn(), join(dir, 'model.onnx'));
    const bytes = readFileSync(join(dir, 'model.onnx'));
    const r = await sff(['model.onnx', ...QUICK, '-o', '.', '--overwrite'], dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--out .* would write model\.onnx over the input .*model\.onnx/);
    expect(readFileSync(join(dir, 'model.onnx')).equals(bytes)).toBe(true);
  }, 60_000);

  it('a model named ...onnx gets a named default output folder, not the working folder', async () => {
    const dir = tmp();
    saveModel(craftedCnn(), join(dir, '...onnx'));
    const r = await sff(['...onnx', ...QUICK], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['...onnx', 'artifacts']);
    expect(readdirSync(join(dir, 'artifacts'))).toEqual(['model']);
  }, 60_000);

  it('--resume DIR writes to DIR (a copy resumed leaves the original alone), honours --epochs, refuses a new --lr or --data', async () => {
    const base = tmp();
    const original = join(base, 'a');
    expect((await sff(['builtin:cnnb', ...QUICK, '-o', original])).status).toBe(0);
    const copy = join(base, 'b');
    cpSync(original, copy, { recursive: true });
    const stamp = statSync(join(original, 'checkpoint.sff')).mtimeMs;
    const r = await sff(['--resume', copy, '--epochs', '2', '--no-export']);
    expect(r.status, r.stderr).toBe(0);
    expect(lines(join(copy, 'metrics.jsonl'))).toBe(2);
    expect(lines(join(original, 'metrics.jsonl'))).toBe(1);
    expect(statSync(join(original, 'checkpoint.sff')).mtimeMs).toBe(stamp);
    const lr = await sff(['--resume', copy, '--lr', '0.5']);
    expect(lr.status).toBe(2);
    expect(lr.stderr).toMatch(/--resume .*b: --lr 0\.5 \(the run has 0\.001\)\. A resumed run keeps its configuration/);
    const data = await sff(['--resume', copy, '--data', base]);
    expect(data.stderr).toMatch(/--data .* \(the run uses builtin:shapes\)/);
  }, 180_000);

  it('a moved run with moved inputs resumes from another working folder (paths stored relative to the run)', async () => {
    const base = tmp();
    mkdirSync(join(base, 'project'));
    saveModel(craftedCnn(), join(base, 'project', 'net.onnx'));
    const first = await sff(['net.onnx', ...QUICK, '-o', 'runs/one'], join(base, 'project'));
    expect(first.status, first.stderr).toBe(0);
    // Run and model move together: the relative path stored in the checkpoint still leads to the model.
    renameSync(join(base, 'project'), join(base, 'moved'));
    const elsewhere = tmp();
    const r = await sff(['--resume', join(base, 'moved', 'runs', 'one'), '--epochs', '2', '--no-export'], elsewhere);
    expect(r.status, r.stderr).toBe(0);
    expect(lines(join(base, 'moved', 'runs', 'one', 'metrics.jsonl'))).toBe(2);
    // The model moves alone: the old path is gone, so the one given now is honoured.
    renameSync(join(base, 'moved', 'net.onnx'), join(base, 'net-moved.onnx'));
    const gone = await sff(['--resume', join(base, 'moved', 'runs', 'one'), '--epochs', '3', '--no-export'], elsewhere);
    expect(gone.status).toBe(2);
    const given = await sff([join(base, 'net-moved.onnx'), '--resume', join(base, 'moved', 'runs', 'one'), '--epochs', '3', '--no-export'], elsewhere);
    expect(given.status, given.stderr).toBe(0);
    expect(lines(join(base, 'moved', 'runs', 'one', 'metrics.jsonl'))).toBe(3);
  }, 180_000);

  it('a read-only parent folder gives a clear error, not ENOENT … mkdir', async () => {
    if (process.getuid?.() === 0) {
      // root ignores permissions: use a path under a file instead, which no user can create.
      const dir = tmp();
      writeFileSync(join(dir, 'file'), 'x');
      const r = await sff(['builtin:cnnb', ...QUICK, '-o', join(dir, 'file', 'run')]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/cannot create the output folder .*file\/run: a part of the path is a file, not a folder\. Choose another --out/);
      return;
    }
    const dir = tmp();
    execFileSync('chmod', ['a-w', dir]);
    const r = await sff(['builtin:cnnb', ...QUICK, '-o', join(dir, 'sub', 'run')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot create the output folder .*: .* is not writable\. Choose another --out/);
  }, 60_000);

  it('resumeCommand quotes what a shell would split', () => {
    expect(resumeCommand(join(process.cwd(), 'runs', 'a'))).toBe('sff-finetune --resume runs/a');
    expect(resumeCommand('/tmp/my run')).toBe("sff-finetune --resume '/tmp/my run'");
  });
});
