/**
 * The kill-and-resume loop: a run SIGKILLed at seeded random moments (mid-epoch, mid-write, before
 * its first checkpoint), restarted or resumed each time, ends with the same metrics and the same
 * exported model as a run that was never interrupted. Stale locks of the killed processes are taken over.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/util/rng.js';
import { CLI as cli, REPO_ROOT as root, ensureCliBuilt } from '../helpers/cli.js';

const EPOCHS = 4;
const args = ['--image-size', '16', '--batch-size', '32', '--max-steps', '6', '--epochs', String(EPOCHS), '--threads', '1'];

/** metrics.jsonl: per-block values keyed by block name. */
function metrics(out: string): { epoch: number; val: { acc: Record<string, number>; loss: Record<string, number> }; ensemble: { acc: number } }[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

function start(out: string): { done: Promise<number | null>; kill: () => void } {
  const resume = existsSync(join(out, 'checkpoint.sff'));
  const argv = resume ? ['--resume', out] : ['builtin:cnnb', '--data', 'builtin:shapes', ...args, '-o', out];
  const child = spawn('node', [cli, ...argv], { cwd: root, stdio: 'ignore' });
  return { done: new Promise((r) => child.on('exit', (code) => r(code))), kill: () => child.kill('SIGKILL') };
}

describe('kill-and-resume loop (CLI)', () => {
  beforeAll(() => {
    ensureCliBuilt();
  }, 120_000);

  it('3 SIGKILLs at seeded moments, then resume: same metrics and model as an uninterrupted run', async () => {
    const whole = mkdtempSync(join(tmpdir(), 'sff-loop-a-'));
    execFileSync('node', [cli, 'builtin:cnnb', '--data', 'builtin:shapes', ...args, '-o', whole, '--overwrite'], { cwd: root, stdio: 'pipe' });
    const out = join(mkdtempSync(join(tmpdir(), 'sff-loop-b-')), 'run');
    const rng = new Rng(0x4b111);
    let kills = 0;
    for (let round = 0; round < 3; round++) {
      const before = existsSync(join(out, 'checkpoint.sff')) ? statSync(join(out, 'checkpoint.sff')).mtimeMs : 0;
      const p = start(out);
      // Wait for a new checkpoint (progress), then kill after a random share of an epoch.
      const t0 = Date.now();
      let exited = false;
      p.done.then(() => (exited = true));
      while (!exited && Date.now() - t0 < 120_000) {
        const now = existsSync(join(out, 'checkpoint.sff')) ? statSync(join(out, 'checkpoint.sff')).mtimeMs : 0;
        if (now > before) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      if (exited) break; // finished before it could be killed
      await new Promise((r) => setTimeout(r, rng.int(1500)));
      p.kill();
      await p.done;
      kills++;
    }
    expect(kills).toBeGreaterThan(0);
    const last = start(out);
    expect(await last.done).toBe(0);
    const a = metrics(whole);
    const b = metrics(out);
    expect(b.map((m) => m.epoch)).toEqual(a.map((m) => m.epoch));
    expect(b.at(-1)!.val.acc).toEqual(a.at(-1)!.val.acc);
    for (const [block, l] of Object.entries(b.at(-1)!.val.loss)) expect(Math.abs(l - a.at(-1)!.val.loss[block]!)).toBeLessThan(1e-5);
    expect(b.at(-1)!.ensemble.acc).toBe(a.at(-1)!.ensemble.acc);
    expect(readFileSync(join(out, 'model.onnx')).equals(readFileSync(join(whole, 'model.onnx')))).toBe(true);
  }, 400_000);
});
