/**
 * Issue 15, "Resource exhaustion": non-regular files are refused before reading, declared sizes are
 * checked against the bytes present and the memory available before allocating.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel, loadModel, saveModel } from '../../src/onnx/io.js';
import { ModelProto } from '../../src/onnx/schema.js';
import { modelToProto } from '../../src/onnx/codec.js';
import { importModel } from '../../src/import/index.js';
import { prepareData } from '../../src/data/index.js';
import { memoryBudget } from '../../src/util/limits.js';
import { finetune } from '../../src/train/finetune.js';
import sharp from 'sharp';
import { craftedCnn } from './crafted.js';
import { CLI as cli, ensureCliBuilt } from '../helpers/cli.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'sff-limits-'));
const savedLimit = process.env.SFF_MEMORY_LIMIT_MB;
afterEach(() => {
  if (savedLimit === undefined) delete process.env.SFF_MEMORY_LIMIT_MB;
  else process.env.SFF_MEMORY_LIMIT_MB = savedLimit;
});

describe('non-regular files', () => {
  it('a FIFO as the model is refused at once (it would block forever)', () => {
    const fifo = join(tmp(), 'model.onnx');
    execFileSync('mkfifo', [fifo]);
    expect(() => loadModel(fifo)).toThrow(/model\.onnx: is a named pipe \(FIFO\); give a regular file/);
  });
  it('/dev/zero as the model is refused (it would read until memory runs out)', () => {
    expect(() => loadModel('/dev/zero')).toThrow(/\/dev\/zero: is a character device; give a regular file/);
  });
  it('a folder as the model says so', () => {
    expect(() => loadModel(tmp())).toThrow(/is a folder; give the \.onnx file/);
  });
  it('a FIFO named like an image is skipped with the reason, not waited on', async () => {
    const dir = tmp();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
    for (const c of ['a', 'b']) {
      execFileSync('mkdir', ['-p', join(dir, c)]);
      for (const k of [1, 2, 3]) writeFileSync(join(dir, c, `${k}.png`), png);
    }
    execFileSync('mkfifo', [join(dir, 'a', 'pipe.png')]);
    const data = await prepareData({ path: dir, imageSize: [8, 8], channels: 3, noCache: true, valFraction: 0.3 });
    expect(data.skipped).toEqual([{ path: join(dir, 'a', 'pipe.png'), reason: 'is a named pipe (FIFO); give a regular file' }]);
    expect(data.train.count + data.val.count).toBe(6);
  });
  it('CIFAR and IDX readers refuse a FIFO named like their files', () => {
    const dir = tmp();
    execFileSync('mkfifo', [join(dir, 'train-images-idx3-ubyte')]);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 0]));
    return expect(prepareData({ path: dir, imageSize: [8, 8], channels: 1, noCache: true })).rejects.toThrow(/train-images-idx3-ubyte: is a named pipe/);
  });
});

describe('declared sizes against what is there', () => {
  it('an initializer declaring 10^12 floats in a few bytes is refused before allocating', () => {
    const m = craftedCnn();
    const proto = modelToProto(m);
    proto.graph.initializer.push({ name: 'huge', dataType: 1, dims: [1_000_000, 1_000_000], floatData: [1, 2, 3] });
    const bytes = ModelProto.encode(ModelProto.fromObject(proto)).finish();
    expect(bytes.length).toBeLessThan(10_000);
    expect(() => decodeModel(bytes, 'huge.onnx')).toThrow(/huge\.onnx: tensor 'huge': float_data holds 3 values but dims \[1000000,1000000\] need 1000000000000/);
  });
  it('raw_data shorter than the declared dims is refused', () => {
    const proto = modelToProto(craftedCnn());
    const t = proto.graph.initializer.find((i: { name: string }) => i.name === 'fc.w');
    t.dims = [3, 80];
    expect(() => decodeModel(ModelProto.encode(ModelProto.fromObject(proto)).finish(), 'short.onnx')).toThrow(/short\.onnx: tensor 'fc\.w': raw_data holds 96 bytes but dims \[3,80\].* need 960/);
  });
  it('a 3 KB model declaring a 4000×4000 input is refused before probing when memory would not hold it', async () => {
    const dir = tmp();
    saveModel(craftedCnn({ size: 4000 }), join(dir, 'big.onnx'));
    process.env.SFF_MEMORY_LIMIT_MB = '1024';
    await expect(importModel(loadModel(join(dir, 'big.onnx')))).rejects.toThrow(/input 'image' \[N, 3, 4000, 4000\] .* would need about 2\.5 GiB, more than the 1\.0 GiB this process may use\. Is the declared input size right\?/);
  });
  it('a model declaring a 100000×100000 input is refused on any machine', async () => {
    const bytes = encodeModel(craftedCnn({ size: 100_000 }));
    await expect(importModel(decodeModel(bytes, 'x.onnx'))).rejects.toThrow(/would need about .* GiB, more than the .* this process may use/);
    expect(memoryBudget()).toBeGreaterThan(0);
  });
  it('a training batch that would not fit is refused before training, naming --batch-size', async () => {
    const dir = tmp();
    saveModel(craftedCnn({ size: 64 }), join(dir, 'm.onnx'));
    process.env.SFF_MEMORY_LIMIT_MB = '30'; // the data (1100 images of 64×64) fits, a step of 64 does not
    await expect(finetune({ model: join(dir, 'm.onnx'), data: 'builtin:shapes', subset: 100, batchSize: 64, epochs: 1, out: join(dir, 'run'), quiet: true, threads: 1 }))
      .rejects.toThrow(/a training step of 64 images of \[3×64×64\] would need about .* MiB, more than the 30\.0 MiB this process may use\. Lower --batch-size/);
  }, 60_000);
  it('the CLI names the problem (exit 2, no V8 abort)', () => {
    const dir = tmp();
    saveModel(craftedCnn({ size: 100_000 }), join(dir, 'big.onnx'));
    ensureCliBuilt({ quiet: true });
    let stderr = '';
    let status = 0;
    try {
      execFileSync('node', [cli, 'inspect', join(dir, 'big.onnx')], { stdio: 'pipe' });
    } catch (e) {
      stderr = String((e as { stderr: Buffer }).stderr);
      status = (e as { status: number }).status;
    }
    expect(status).toBe(2);
    expect(stderr).toMatch(/^sff-finetune: input 'image' \[N, 3, 100000, 100000\]/);
  }, 60_000);
});
