/**
 * Issue 15, "Escape": nothing the tool writes leaves --out, whatever the model's block names say;
 * an external-data location cannot read outside the model's folder; the input model is never
 * overwritten.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { ModelProto } from '../../src/onnx/schema.js';
import { modelToProto, tensorToProto } from '../../src/onnx/codec.js';
import type { Model } from '../../src/ir/graph.js';
import { finetune } from '../../src/train/finetune.js';
import { pathInside, safeFileName } from '../../src/util/paths.js';
import { craftedCnn } from './crafted.js';

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `model` with every initializer of ≥ 64 bytes pointing at external data `location` (no data file written). */
function saveWithLocation(model: Model, path: string, location: string): void {
  const proto = modelToProto(model, (t) =>
    t.raw.byteLength < 64
      ? tensorToProto(t)
      : { name: t.name, dataType: t.dataType, dims: t.dims, dataLocation: 1, externalData: [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: String(t.raw.byteLength) }] },
  );
  writeFileSync(path, ModelProto.encode(ModelProto.fromObject(proto)).finish());
}

describe('file names from untrusted text', () => {
  it('safeFileName keeps letters, digits, . _ - and never yields a path or a hidden name', () => {
    expect(safeFileName('layer1.0')).toBe('layer1.0');
    expect(safeFileName('../../etc/passwd')).toBe('etc_passwd');
    expect(safeFileName('..')).toBe('unnamed');
    expect(safeFileName('a/b\\c:d e')).toBe('a_b_c_d_e');
    expect(safeFileName('x'.repeat(300))).toHaveLength(80);
    for (const s of ['../x', '/abs', '..', '.hidden', 'a/../../b']) expect(safeFileName(s)).not.toMatch(/^\.|[\\/]/);
  });
  it('pathInside refuses .. and symbolic links that lead outside the folder', () => {
    const root = tmp('sff-inside-');
    expect(pathInside(root, ['blocks', 'a.onnx'], 'graph')).toBe(join(root, 'blocks', 'a.onnx'));
    expect(() => pathInside(root, ['..', 'x.onnx'], 'graph')).toThrow(/graph '\.\.\/x\.onnx' resolves to .* outside/);
    const elsewhere = tmp('sff-elsewhere-');
    symlinkSync(elsewhere, join(root, 'link'));
    expect(() => pathInside(root, ['link', 'x.onnx'], 'graph')).toThrow(/symbolic link .* outside/);
  });
});

describe('training a model whose block names climb out of --out', () => {
  it('writes every file inside --out (block names sanitised)', async () => {
    const base = tmp('sff-escape-');
    const modelPath = join(base, 'evil.onnx');
    saveModel(craftedCnn({ scopes: ['../../../escaped', '/abs/olute'] }), modelPath);
    const out = join(base, 'run', 'out');
    await finetune({ model: modelPath, data: 'builtin:shapes', out, epochs: 1, maxStepsPerEpoch: 2, batchSize: 16, threads: 1, quiet: true, noExport: true });
    expect(readdirSync(base).sort()).toEqual(['evil.onnx', 'run']);
    expect(readdirSync(join(base, 'run'))).toEqual(['out']);
    const blocks = readdirSync(join(out, 'blocks'));
    expect(blocks).toContain('block0_escaped.train.onnx');
    expect(blocks).toContain('block1_abs_olute.eval.onnx');
    expect(existsSync(join(base, 'escaped'))).toBe(false);
  }, 120_000);
});

describe('external data confined to the model folder', () => {
  const model = craftedCnn();
  it('refuses a location that climbs out with ..', () => {
    const dir = tmp('sff-ext-');
    mkdirSync(join(dir, 'models'));
    writeFileSync(join(dir, 'secret.bin'), new Uint8Array(4096));
    const path = join(dir, 'models', 'm.onnx');
    saveWithLocation(model, path, '../secret.bin');
    expect(() => loadModel(path)).toThrow(/m\.onnx: external data of tensor '.*' '\.\.\/secret\.bin' resolves to .*secret\.bin, outside .*models.*only files inside the model's folder are read/);
  });
  it('refuses an absolute location such as /etc/passwd', () => {
    const path = join(tmp('sff-ext-'), 'm.onnx');
    saveWithLocation(model, path, '/etc/passwd');
    expect(() => loadModel(path)).toThrow(/m\.onnx: tensor '.*' points its external data at the absolute path '\/etc\/passwd'/);
  });
  it('refuses a symbolic link inside the folder that points outside', () => {
    const dir = tmp('sff-ext-');
    const outside = tmp('sff-ext-outside-');
    writeFileSync(join(outside, 'w.bin'), new Uint8Array(4096));
    symlinkSync(join(outside, 'w.bin'), join(dir, 'w.bin'));
    saveWithLocation(model, join(dir, 'm.onnx'), 'w.bin');
    expect(() => loadModel(join(dir, 'm.onnx'))).toThrow(/symbolic link .* outside/);
  });
  it('still reads external data beside the model', () => {
    const dir = tmp('sff-ext-');
    saveModel(model, join(dir, 'm.onnx'), { externalData: { threshold: 64 } });
    expect(existsSync(join(dir, 'm.onnx.data'))).toBe(true);
    const back = loadModel(join(dir, 'm.onnx'));
    expect(back.graph.initializers.get('fc.w')!.raw).toEqual(model.graph.initializers.get('fc.w')!.raw);
  });
  it('saveModel refuses to write external data outside the model folder', () => {
    const dir = tmp('sff-ext-');
    expect(() => saveModel(model, join(dir, 'm.onnx'), { externalData: { location: '../x.data', threshold: 64 } })).toThrow(/outside/);
  });
});
