/**
 * Pipelined block training (--pipeline) against the serial reference: the same metrics and the
 * same weights bit for bit (each onnxruntime session on one thread in both), resume after
 * SIGKILL under the pipeline, and a worker that throws or exits stopping the run with an error
 * naming the block. The worker threads run compiled code, so this suite builds dist/ first and
 * drives the compiled library and CLI.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FinetuneOptions } from '../../../src/train/options.js';
import type { finetune as Finetune, FinetuneResult } from '../../../src/train/finetune.js';
import type { readCheckpoint as ReadCheckpoint } from '../../../src/train/checkpoint.js';
import { CLI as cli, REPO_ROOT as root } from '../../helpers/cli.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'sff-pipe-'));
let finetune: typeof Finetune;
let readCheckpoint: typeof ReadCheckpoint;

const base = (out: string, extra: Partial<FinetuneOptions> = {}): FinetuneOptions => ({
  model: 'builtin:cnnb',
  data: 'builtin:shapes',
  imageSize: 16,
  batchSize: 64,
  maxStepsPerEpoch: 8,
  epochs: 3,
  out,
  quiet: true,
  threads: 1,
  ...extra,
});

/** Everything a run reports except wall-clock, date and memory readings. */
function outcome(r: FinetuneResult) {
  const history = r.history.map(({ seconds, trainSeconds, stepSeconds, imagesPerSecond, blockImagesPerSecond, peakRssMB, time, ...m }) => m);
  return { history, best: r.best?.epoch, stoppedEarly: r.stoppedEarly, exportCheck: r.exportCheck, blocks: r.blocks };
}

/** Runs a command without blocking this thread (a synchronous child would starve vitest's own messages). */
function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}
const runCli = (args: string[]) => run('node', [cli, ...args]);

function checkpointArrays(out: string): Record<string, Float32Array> {
  return readCheckpoint(join(out, 'checkpoint.sff')).arrays as Record<string, Float32Array>;
}

describe('pipelined block training', () => {
  beforeAll(async () => {
    // Always rebuild: a stale dist/ would test old worker code.
    await run('npx', ['tsc', '-p', 'tsconfig.json']);
    ({ finetune } = await import(join(root, 'dist/train/finetune.js')));
    ({ readCheckpoint } = await import(join(root, 'dist/train/checkpoint.js')));
  }, 600_000);

  it('gives the serial run\'s metrics, weights and export bit for bit (2 and 3 workers, one thread per session)', async () => {
    const serialOut = tmp();
    const serial = await finetune(base(serialOut));
    for (const workers of [2, 3]) {
      const out = tmp();
      const logs: string[] = [];
      const piped = await finetune(base(out, { pipeline: workers, threads: workers, quiet: false, onEvent: (e) => e.type === 'note' && logs.push(e.message) }));
      expect(outcome(piped), `${workers} workers`).toEqual(outcome(serial));
      const a = checkpointArrays(serialOut);
      const b = checkpointArrays(out);
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
      for (const k of Object.keys(a)) expect(Buffer.from(b[k]!.buffer).equals(Buffer.from(a[k]!.buffer)), k).toBe(true);
      // The plan is printed: one line per stage, every block in exactly one stage, one thread each.
      const stages = logs.filter((l) => /^ {2}stage \d → /.test(l));
      expect(stages).toHaveLength(workers);
      stages.forEach((l) => expect(l).toMatch(/, 1 thread, ≈[\d.]+ ms\/step$/));
      expect(logs.some((l) => new RegExp(`^pipeline ${workers} workers, ${workers} threads \\(block costs measured`).test(l))).toBe(true);
    }
  }, 900_000);

  it('keeps --freeze and early stopping unchanged (--pipeline auto on 2 threads)', async () => {
    const extra: Partial<FinetuneOptions> = { freeze: ['1'], stopPatience: 1, epochs: 4, lr: 0.02 };
    const serial = await finetune(base(tmp(), extra));
    const piped = await finetune(base(tmp(), { ...extra, pipeline: 'auto', threads: 2 }));
    expect(piped.blocks[1]!.frozen).toBe(true);
    expect(outcome(piped)).toEqual(outcome(serial));
  }, 900_000);

  it.each([
    ['exit', /pipeline worker running block 2 \(block2\) exited \(code 7\)/],
    ['throw', /pipeline worker running block 1 \(block1\) failed: injected fault \(test hook\) in block 1 at step 3/],
  ] as const)('stops with an error naming the block when a worker %ss', async (kind, message) => {
    const block = kind === 'exit' ? 2 : 1;
    const run = finetune(base(tmp(), { pipeline: 2, threads: 2, pipelineFault: { block, step: 3, kind } }));
    await expect(run).rejects.toThrow(message);
    await expect(run).rejects.toMatchObject({ name: 'PipelineWorkerError', block });
  }, 600_000);

  it('refuses --pipeline N on --device webgpu before any session starts (its EP cannot run sessions on several threads)', async () => {
    await expect(finetune(base(tmp(), { device: 'webgpu', pipeline: 2, threads: 2 }))).rejects.toThrow(
      /^--pipeline 2 on --device webgpu: onnxruntime's WebGPU EP shares one device context across the process and cannot run sessions from several threads at once; drop --pipeline/,
    );
  }, 120_000);

  it('resumes after SIGKILL under the pipeline and ends with the serial run\'s metrics (CLI)', async () => {
    const args = (out: string, pipeline: string[]) => ['builtin:cnnb', '--data', 'builtin:shapes', '--image-size', '16', '--batch-size', '64', '--max-steps', '12', '--epochs', '3', ...pipeline, '--out', out, '--no-export'];
    const serial = tmp();
    await runCli(args(serial, ['--threads', '1']));
    const killed = tmp();
    const child = spawn('node', [cli, ...args(killed, ['--threads', '2', '--pipeline', '2'])], { cwd: root, stdio: 'ignore' });
    const t0 = Date.now();
    while (!existsSync(join(killed, 'checkpoint.sff')) && Date.now() - t0 < 90_000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 150));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const lines = (out: string) => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines(killed).length).toBeLessThan(3); // it really was interrupted
    await runCli(['--resume', killed, '--pipeline', '2', '--threads', '2']);
    const a = lines(serial);
    const b = lines(killed);
    expect(b.map((m) => m.epoch)).toEqual([1, 2, 3]);
    for (const k of [0, 1, 2]) {
      expect(b[k].val).toEqual(a[k].val);
      expect(b[k].train).toEqual(a[k].train);
      expect(b[k].ensemble).toEqual(a[k].ensemble);
    }
    const ca = checkpointArrays(serial);
    const cb = checkpointArrays(killed);
    for (const k of Object.keys(ca)) expect(Buffer.from(cb[k]!.buffer).equals(Buffer.from(ca[k]!.buffer)), k).toBe(true);
  }, 900_000);
});
