/**
 * Killed with SIGKILL mid-epoch, `--resume` continues from the last finished epoch and
 * ends with the same metrics as an uninterrupted run (through the real CLI).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI as cli, REPO_ROOT as root, ensureCliBuilt } from '../helpers/cli.js';

const args = (out: string) => ['builtin:cnnb', '--data', 'builtin:shapes', '--image-size', '16', '--batch-size', '64', '--max-steps', '25', '--epochs', '4', '--threads', '1', '--out', out];

function lastMetrics(out: string) {
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  return { count: lines.length, last: JSON.parse(lines.at(-1)!) };
}

describe('resume after SIGKILL (CLI)', () => {
  beforeAll(() => {
    ensureCliBuilt();
  }, 120_000);

  it('continues from the last finished epoch and matches an uninterrupted run', async () => {
    const whole = mkdtempSync(join(tmpdir(), 'sff-kill-a-'));
    execFileSync('node', [cli, ...args(whole)], { cwd: root, stdio: 'pipe' });
    const killed = mkdtempSync(join(tmpdir(), 'sff-kill-b-'));
    const child = spawn('node', [cli, ...args(killed)], { cwd: root, stdio: 'ignore' });
    // Wait for the first finished epoch's checkpoint, then kill during the next epoch.
    const t0 = Date.now();
    while (!existsSync(join(killed, 'checkpoint.sff')) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 150));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const before = lastMetrics(killed);
    expect(before.count).toBeLessThan(4); // it really was interrupted
    execFileSync('node', [cli, '--resume', killed], { cwd: root, stdio: 'pipe' });
    const a = lastMetrics(whole);
    const b = lastMetrics(killed);
    expect(b.count).toBe(4);
    expect(b.last.epoch).toBe(4);
    expect(b.last.val.acc).toEqual(a.last.val.acc);
    for (const [block, l] of Object.entries<number>(b.last.val.loss)) expect(Math.abs(l - a.last.val.loss[block])).toBeLessThan(1e-5);
    expect(b.last.ensemble.acc).toBe(a.last.ensemble.acc);
  }, 180_000);
});
