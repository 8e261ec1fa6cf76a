import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';

describe('checkpoints', () => {
  it('round-trips header and arrays exactly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sff-ckpt-'));
    const path = join(dir, 'c.sff');
    const a = Float32Array.from([1.5, -2, Math.PI, 1e-30]);
    writeCheckpoint(path, { header: { epoch: 3, name: 'x' }, arrays: { a, b: new Float32Array(0), c: Float32Array.from([7]) } });
    const r = readCheckpoint<{ epoch: number; name: string }>(path);
    expect(r.header).toEqual({ epoch: 3, name: 'x' });
    expect(Array.from(r.arrays.a!)).toEqual(Array.from(a));
    expect(r.arrays.b!.length).toBe(0);
    expect(r.arrays.c![0]).toBe(7);
  });
  it('rejects a truncated or foreign file with the path in the message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sff-ckpt-'));
    const path = join(dir, 'c.sff');
    writeCheckpoint(path, { header: {}, arrays: { a: new Float32Array(1000) } });
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    expect(() => readCheckpoint(path)).toThrow(/c\.sff: checkpoint is truncated/);
    writeFileSync(path, 'hello');
    expect(() => readCheckpoint(path)).toThrow(/not an sff-finetune checkpoint/);
    expect(() => readCheckpoint(join(dir, 'none.sff'))).toThrow(/no checkpoint here/);
  });
});
