/** load → save → onnxruntime gives bit-identical outputs; external data; broken files. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel, encodeModel, ModelFileError } from '../../src/onnx/io.js';
import { hasShared, hasTorchvision, SHARED_MOBILENET, torchvision, warnSkip } from '../helpers/shared.js';
import { toyResNet } from '../import/toy.js';
import { bitEqual, randomImage, runBytes, runModel } from '../import/run.js';

const tmp = mkdtempSync(join(tmpdir(), 'sff-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
warnSkip('test/onnx/roundtrip.test.ts', 'shared');
warnSkip('test/onnx/roundtrip.test.ts', 'torchvision');

async function expectRoundTrip(path: string, input: string, dims: number[]): Promise<void> {
  const feeds = { [input]: randomImage(dims) };
  const before = await runBytes(readFileSync(path), feeds);
  const out = join(tmp, 'rt.onnx');
  saveModel(loadModel(path), out);
  const after = await runBytes(readFileSync(out), feeds);
  for (const k of Object.keys(before)) expect(bitEqual(before[k]!, after[k]!), `output ${k}`).toBe(true);
}

describe('ONNX round trip (in-test model)', () => {
  it('inline save/load keeps outputs bit-identical', async () => {
    const m = toyResNet({ bn: 'eval' });
    const path = join(tmp, 'toy.onnx');
    saveModel(m, path);
    const feeds = { image: randomImage([2, 3, 16, 16]) };
    const a = await runModel(m, feeds);
    const b = await runBytes(readFileSync(path), feeds);
    expect(bitEqual(a.logits!, b.logits!)).toBe(true);
  });

  it('external data: saved beside the model, reloaded, same outputs', async () => {
    const m = toyResNet();
    const path = join(tmp, 'ext.onnx');
    saveModel(m, path, { externalData: { threshold: 64 } });
    expect(existsSync(join(tmp, 'ext.onnx.data'))).toBe(true);
    expect(readFileSync(path).length).toBeLessThan(encodeModel(m).length / 2);
    const re = loadModel(path);
    const feeds = { image: randomImage([1, 3, 16, 16]) };
    const a = await runModel(m, feeds);
    const b = await runModel(re, feeds);
    const c = await runBytes(path, feeds); // onnxruntime reads the external file itself
    expect(bitEqual(a.logits!, b.logits!)).toBe(true);
    expect(bitEqual(a.logits!, c.logits!)).toBe(true);
  });

  it('a truncated file gives ModelFileError naming the file', () => {
    const bytes = encodeModel(toyResNet());
    const path = join(tmp, 'cut.onnx');
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    expect(() => loadModel(path)).toThrow(ModelFileError);
    expect(() => loadModel(path)).toThrow(/cut\.onnx.*truncated|cut\.onnx.*corrupt/);
  });

  it('missing external data and missing files are ModelFileErrors', () => {
    const path = join(tmp, 'ext2.onnx');
    saveModel(toyResNet(), path, { externalData: { threshold: 64 } });
    rmSync(join(tmp, 'ext2.onnx.data'));
    expect(() => loadModel(path)).toThrow(/ext2\.onnx.*ext2\.onnx\.data/);
    expect(() => loadModel(join(tmp, 'nope.onnx'))).toThrow(ModelFileError);
  });
});

describe.skipIf(!hasShared)('ONNX round trip: shared MobileNetV3', () => {
  it('bit-identical outputs', async () => expectRoundTrip(SHARED_MOBILENET, 't159', [2, 3, 224, 224]), 30_000);
});

describe.skipIf(!hasTorchvision)('ONNX round trip: torchvision exports', () => {
  for (const name of ['resnet18_eval_op13', 'resnet18_train_op17', 'mobilenet_v3_small_eval_op13', 'mobilenet_v3_small_eval_op17'])
    it(`${name}: bit-identical outputs`, async () => expectRoundTrip(torchvision(name), 'input', [2, 3, 224, 224]), 30_000);
  it('resnet18 external data round trip', async () => {
    const path = join(tmp, 'r18.onnx');
    saveModel(loadModel(torchvision('resnet18_eval_op17')), path, { externalData: {} });
    const feeds = { input: randomImage([1, 3, 224, 224]) };
    const a = await runBytes(readFileSync(torchvision('resnet18_eval_op17')), feeds);
    const b = await runModel(loadModel(path), feeds);
    expect(bitEqual(a.logits!, b.logits!)).toBe(true);
  }, 30_000);
});
