/**
 * Issue 15, checkpoints: a checksum over header and tensors, damage named as such (truncated,
 * corrupt header, flipped weights), a format version, the old format still read, and temp files
 * left by a killed write removed at the next start.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKPOINT_FORMAT, CheckpointError, readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';
import { removeStaleTempFiles } from '../../src/util/fs.js';

function written(): { path: string; bytes: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'sff-ckpt-'));
  const path = join(dir, 'checkpoint.sff');
  writeCheckpoint(path, { header: { epoch: 2, config: { lr: 1e-3 } }, arrays: { w: Float32Array.from({ length: 256 }, (_, i) => i / 7) } });
  return { path, bytes: readFileSync(path) };
}

function errorOf(path: string): CheckpointError {
  try {
    readCheckpoint(path);
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return e as CheckpointError;
  }
  throw new Error(`${path} was accepted`);
}

describe('checkpoint integrity', () => {
  it('round-trips and records its format version', () => {
    const { path, bytes } = written();
    expect(bytes.toString('latin1', 0, 8)).toBe(`SFFCKPT${CHECKPOINT_FORMAT}`);
    expect(JSON.parse(bytes.toString('utf8', 12, 12 + bytes.readUInt32LE(8))).format).toBe(CHECKPOINT_FORMAT);
    expect(readCheckpoint<{ epoch: number }>(path).header.epoch).toBe(2);
  });
  it('a flipped bit in the weights is reported as corruption, not loaded', () => {
    const { path, bytes } = written();
    bytes[bytes.length - 32 - 100]! ^= 0x10;
    writeFileSync(path, bytes);
    const e = errorOf(path);
    expect(e.kind).toBe('corrupt');
    expect(e.message).toMatch(/checkpoint\.sff: checkpoint is corrupt: its checksum does not match its contents.*--overwrite/);
  });
  it('a damaged header is "corrupt", not a bare JSON SyntaxError', () => {
    const { path, bytes } = written();
    bytes.write('#', 12, 'latin1'); // the header's opening brace
    writeFileSync(path, bytes);
    const e = errorOf(path);
    expect(e.kind).toBe('corrupt');
    expect(e.message).toMatch(/checkpoint header is corrupt \(not valid JSON\)/);
  });
  it('a truncated file is "truncated"', () => {
    const { path, bytes } = written();
    writeFileSync(path, bytes.subarray(0, bytes.length - 500));
    expect(errorOf(path).kind).toBe('truncated');
    writeFileSync(path, bytes.subarray(0, 10));
    expect(errorOf(path).kind).toBe('truncated');
  });
  it('a newer format is named with what to do', () => {
    const { path, bytes } = written();
    bytes.write('SFFCKPT9', 0, 'latin1');
    writeFileSync(path, bytes);
    const e = errorOf(path);
    expect(e.kind).toBe('version');
    expect(e.message).toMatch(/format 9 is newer than this sff-finetune reads \(2\); update sff-finetune/);
  });
  it('format 1 (no checksum) is still read', () => {
    const { path } = written();
    const json = Buffer.from(JSON.stringify({ header: { epoch: 7 }, index: [{ key: 'a', offset: 0, length: 2 }] }));
    const pad = (4 - ((12 + json.length) % 4)) % 4;
    const head = Buffer.alloc(12);
    head.write('SFFCKPT1', 0, 'latin1');
    head.writeUInt32LE(json.length + pad, 8);
    writeFileSync(path, Buffer.concat([head, json, Buffer.alloc(pad, 0x20), Buffer.from(Float32Array.from([1.5, -2]).buffer)]));
    const r = readCheckpoint<{ epoch: number }>(path);
    expect(r.header.epoch).toBe(7);
    expect(Array.from(r.arrays.a!)).toEqual([1.5, -2]);
  });
  it('a foreign file and a missing one are told apart', () => {
    const { path } = written();
    writeFileSync(path, 'hello world, not a checkpoint');
    expect(errorOf(path).kind).toBe('foreign');
    expect(errorOf(join(path, '..', 'none.sff')).kind).toBe('missing');
  });
});

describe('temp files of interrupted writes', () => {
  it('removes .<name>.<pid>.tmp of dead processes, keeps those of live ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sff-stale-'));
    const dead = spawnSync('true').pid!; // a process that has exited
    writeFileSync(join(dir, `.checkpoint.sff.${dead}.tmp`), 'x');
    writeFileSync(join(dir, `.model.onnx.${process.pid}.tmp`), 'x');
    writeFileSync(join(dir, 'keep.tmp'), 'x');
    expect(removeStaleTempFiles(dir)).toEqual([`.checkpoint.sff.${dead}.tmp`]);
    expect(readdirSync(dir).sort()).toEqual([`.model.onnx.${process.pid}.tmp`, 'keep.tmp']);
    expect(existsSync(join(dir, `.checkpoint.sff.${dead}.tmp`))).toBe(false);
  });
});
