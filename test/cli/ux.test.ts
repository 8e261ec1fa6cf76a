/**
 * The CLI as a user drives it (the built dist/cli/main.js in a child process): stdout carries
 * only results (one JSON document with --json), stderr the human log and plain progress lines;
 * config.json round-trips through --config with flags overriding it; the default export keeps
 * only the ensemble's heads and matches the ensemble's scores within 1e-5; -h, -V, typo hints.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { loadModel } from '../../src/onnx/io.js';
import { DataType } from '../../src/ir/types.js';
import { CLI as cli, REPO_ROOT as root, ensureCliBuilt } from '../helpers/cli.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'sff-ux-'));
/** A small run: CNNB at 16×16, 2 short epochs, one thread; momentum set so no BatchNorm warning is due. */
const small = ['builtin:cnnb', '--data', 'builtin:shapes', '--image-size', '16', '--batch-size', '64', '--max-steps', '12', '--epochs', '2', '--threads', '1', '--bn-momentum', '0.2'];

/** Runs the CLI in a child process (asynchronously: a blocked test worker loses contact with vitest). */
function run(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; status: number | null }> {
  return new Promise((done, fail) => {
    const child = spawn('node', [cli, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', fail);
    child.on('close', (status) => done({ stdout, stderr, status }));
  });
}

/** Scores of a model on a fixed batch. */
async function scores(path: string): Promise<{ scores: Float32Array; outputs: readonly string[] }> {
  const s = await ort.InferenceSession.create(path);
  const x = new ort.Tensor('float32', Float32Array.from({ length: 4 * 3 * 16 * 16 }, (_, i) => Math.sin(i * 0.37)), [4, 3, 16, 16]);
  const o = await s.run({ [s.inputNames[0]!]: x });
  const out = { scores: o.scores!.data as Float32Array, outputs: s.outputNames };
  await s.release();
  return out;
}

describe('sff-finetune CLI conventions', () => {
  beforeAll(() => {
    ensureCliBuilt({ always: true, quiet: true });
  }, 180_000);

  it('-h, -V, and suggestions for a mistyped option or command', async () => {
    const help = await run(['-h']);
    expect(help.status).toBe(0);
    for (const group of ['Run:', 'Training:', 'SFF blocks and heads:', 'Data:', 'Export:', 'Runtime:', 'Output:']) expect(help.stdout).toContain(group);
    expect(help.stdout).toMatch(/--epochs\s+epochs\s+\[number\] \[default: 100\]/);
    expect(help.stdout).not.toMatch(/SPEC/);
    expect((await run(['eval', '--help'])).stdout).toMatch(/-o, --out/);
    expect((await run(['create', '--help'])).stdout).toMatch(/-o, --out/);
    const v = await run(['-V']);
    expect(v.status).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    const typo = await run([...small, '--epoch', '3']);
    expect(typo.status).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toMatch(/Unknown argument: epoch\n--epoch → did you mean --epochs\?/);
    expect((await run(['evl', 'model.onnx', '--data', 'x'])).stderr).toMatch(/unknown command 'evl': did you mean 'sff-finetune eval'\?/);
    expect((await run(['inspct'])).stderr).toMatch(/unknown command 'inspct': did you mean 'sff-finetune inspect'\?/);
  }, 60_000);

  let first: string;
  let firstJson: Record<string, any>;

  it('--json: one JSON document on stdout, the log and plain progress lines on stderr; run folder artifacts', async () => {
    first = tmp();
    const r = await run([...small, '--ensemble', 'last:1', '--json', '-o', first], { SFF_PROGRESS_SECONDS: '0' });
    expect(r.status, r.stderr).toBe(0);
    firstJson = JSON.parse(r.stdout); // the whole of stdout is one document
    expect(firstJson.out).toBe(first);
    expect(firstJson.model).toBe(join(first, 'model.onnx'));
    expect(r.stderr).toMatch(/^model {2}builtin:cnnb/m);
    expect(r.stderr).toMatch(/^epoch {3}2\/2 {2}train loss [\d.]+ \(mean over blocks\)/m);
    // Not a terminal: plain progress lines for every long phase, with the whole run's ETA during training.
    for (const phase of ['build graphs', 'train epoch 1/2', 'validate epoch 2/2', 'export check']) expect(r.stderr).toContain(`[progress] ${phase}`);
    expect(r.stderr).toMatch(/\[progress\] train epoch 2\/2 .*epoch mean step loss [\d.]+ \(mean over blocks\).*run ETA \d/);
    expect(r.stderr).not.toContain('\r');
    for (const f of ['config.json', 'metrics.csv', 'metrics.jsonl', 'curves.svg', 'report.html', 'model.onnx', 'model.json', 'checkpoint.sff']) expect(existsSync(join(first, f)), f).toBe(true);
    const config = JSON.parse(readFileSync(join(first, 'config.json'), 'utf8'));
    expect(config.options).toEqual(firstJson.config);
    expect(config.seed).toBe(0);
    expect(config.data.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(config.versions.onnxruntime).toBe('1.30.0');
  }, 300_000);

  it('--quiet: nothing on stderr; the result still on stdout', async () => {
    const r = await run(['eval', join(first, 'model.onnx'), '--data', 'builtin:shapes', '--split', 'val', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/top-1 [\d.]+% on 1000 images/);
    const j = await run(['eval', join(first, 'model.onnx'), '--data', 'builtin:shapes', '--split', 'val', '--json'], { SFF_PROGRESS_SECONDS: '0' });
    expect(JSON.parse(j.stdout).accuracy).toBeCloseTo(firstJson.exportCheck.accuracy, 6);
    // eval reports its long phases on stderr as training does (plain lines off a terminal;
    // builtin:shapes is rendered, not decoded, so scoring is the only phase here).
    expect(j.stderr).toMatch(/\[progress\] evaluate\s+\d+\/1000 images/);
    const c = await run(['create', 'cnn', '-o', join(tmp(), 'cnn.onnx'), '--json']);
    expect(JSON.parse(c.stdout)).toMatchObject({ kind: 'cnn' });
  }, 60_000);

  it('prunes the export to the ensemble\'s heads; it matches the ensemble within 1e-5 and the all-heads export', async () => {
    // last:1 on three blocks: only block2's head feeds `scores`.
    expect(firstJson.exportedHeads).toEqual(['goodness_block2']);
    expect(firstJson.exportCheck.maxAbsDiff).toBeLessThan(1e-5);
    const sidecar = JSON.parse(readFileSync(join(first, 'model.json'), 'utf8'));
    expect(sidecar.classes).toHaveLength(10);
    expect(sidecar.preprocess.resize).toMatchObject({ height: 16, width: 16, fit: 'cover', crop: 'centre', interpolation: 'lanczos3' });
    expect(sidecar.input.layout).toBe('NCHW');
    expect(sidecar.ensemble).toEqual({ rule: 'last:1', weights: { block0: 0, block1: 0, block2: 1 } });
    expect(sidecar.outputs.goodness).toEqual([{ name: 'goodness_block2', block: 'block2' }]);
    expect(firstJson.latency.exportedMs).toBeGreaterThan(0);
    expect(firstJson.latency.originalMs).toBeGreaterThan(0);

    // Config round trip: the same options from config.json, with flags overriding (--out, --export-heads).
    const second = tmp();
    const r = await run(['--config', join(first, 'config.json'), '-o', second, '--export-heads', 'all', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const secondJson = JSON.parse(r.stdout);
    expect({ ...secondJson.config, out: first, exportHeads: 'ensemble' }).toEqual(firstJson.config);
    expect(secondJson.exportedHeads).toEqual(['goodness_block0', 'goodness_block1', 'goodness_block2']);
    const a = await scores(join(first, 'model.onnx'));
    const b = await scores(join(second, 'model.onnx'));
    expect(a.outputs).toEqual(['scores', 'goodness_block2']);
    expect(b.outputs).toEqual(['scores', 'goodness_block0', 'goodness_block1', 'goodness_block2']);
    let diff = 0;
    for (let i = 0; i < a.scores.length; i++) diff = Math.max(diff, Math.abs(a.scores[i]! - b.scores[i]!));
    expect(diff).toBeLessThan(1e-5);
    expect(loadModel(join(first, 'model.onnx')).graph.nodes.length).toBeLessThan(loadModel(join(second, 'model.onnx')).graph.nodes.length);
  }, 300_000);

  it('exports probabilities and float16 weights on request', async () => {
    const out = tmp();
    const r = await run(['--config', join(first, 'config.json'), '-o', out, '--epochs', '1', '--export-scores', 'probabilities', '--export-dtype', 'float16', '--verbose']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/block 0 block0 +out /); // --verbose: per-block build lines
    expect(r.stdout).toMatch(/best epoch 1 of 1/);
    const m = loadModel(join(out, 'model.onnx'));
    const types = [...m.graph.initializers.values()].filter((t) => t.dims.reduce((x, d) => x * d, 1) >= 16).map((t) => t.dataType);
    expect(types.length).toBeGreaterThan(0);
    expect(types.every((t) => t === DataType.FLOAT16)).toBe(true);
    expect(statSync(join(out, 'model.onnx')).size).toBeLessThan(0.6 * statSync(join(first, 'model.onnx')).size);
    const { scores: p } = await scores(join(out, 'model.onnx'));
    for (let n = 0; n < 4; n++) expect(p.subarray(n * 10, n * 10 + 10).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    const sidecar = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(sidecar.outputs.scores.kind).toBe('probabilities');
    expect(sidecar.weightsDtype).toBe('float16');
  }, 300_000);
});
