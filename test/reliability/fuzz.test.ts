/**
 * Fuzzers with fixed seeds: mutated ONNX files and mutated checkpoints must give the tool's own
 * named error (or, for ONNX, a model) — never a crash, another exception type or a hang. Each case
 * is bounded in time; the counts keep CI time modest (a few seconds).
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel, loadModel, ModelFileError } from '../../src/onnx/io.js';
import { CheckpointError, readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';
import { Rng } from '../../src/util/rng.js';
import { toyResNet } from '../import/toy.js';
import { craftedCnn } from './crafted.js';
import { mutate } from './mutate.js';

/** Per-case wall-clock bound: a parser that loops or allocates without end would blow it. */
const CASE_MS = 2000;

describe('ONNX bytes fuzzer', () => {
  const seeds = [
    { name: 'toy ResNet (BatchNorm, residuals)', bytes: encodeModel(toyResNet({ bn: 'eval' })) },
    { name: 'scoped chain CNN', bytes: encodeModel(craftedCnn()) },
  ];
  for (const seed of seeds) {
    it(`${seed.name}: 150 mutations, each a model or a ModelFileError`, () => {
      const rng = new Rng(0x0ff5e7, seed.bytes.length);
      const dir = mkdtempSync(join(tmpdir(), 'sff-fuzz-onnx-'));
      const outcomes = { model: 0, error: 0 };
      for (let k = 0; k < 150; k++) {
        const { bytes, what } = mutate(seed.bytes, rng);
        const t0 = performance.now();
        try {
          // Half through loadModel (the file path, external data resolved against its folder).
          if (k % 2) decodeModel(bytes, `case${k}.onnx`, dir);
          else {
            const file = join(dir, `case${k}.onnx`);
            writeFileSync(file, bytes);
            loadModel(file);
          }
          outcomes.model++;
        } catch (e) {
          if (!(e instanceof ModelFileError)) throw new Error(`case ${k} (${what}): ${(e as Error).name}: ${(e as Error).message}`);
          expect((e as Error).message).toMatch(/case\d+\.onnx: /);
          outcomes.error++;
        }
        expect(performance.now() - t0, `case ${k} (${what}) took too long`).toBeLessThan(CASE_MS);
      }
      expect(outcomes.model + outcomes.error).toBe(150);
      expect(outcomes.error).toBeGreaterThan(0);
    });
  }
});

describe('checkpoint bytes fuzzer', () => {
  it('300 mutations of a real checkpoint: every one is a CheckpointError naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sff-fuzz-ckpt-'));
    const good = join(dir, 'checkpoint.sff');
    const header = { version: 1, epoch: 4, config: { lr: 3e-4, classes: ['a', 'b'] }, history: [{ epoch: 1, acc: 0.5 }] };
    const rng = new Rng(0xc4e7);
    const arrays = { 'b0.params': Float32Array.from({ length: 300 }, () => rng.next() - 0.5), 'b0.m': new Float32Array(300), 'b1.params': Float32Array.from([1, 2, 3]) };
    writeCheckpoint(good, { header, arrays });
    const bytes = new Uint8Array(readFileSync(good));
    const kinds = new Map<string, number>();
    for (let k = 0; k < 300; k++) {
      const { bytes: bad, what } = mutate(bytes, rng);
      const file = join(dir, `case${k}.sff`);
      writeFileSync(file, bad);
      const t0 = performance.now();
      let error: unknown;
      try {
        readCheckpoint(file);
      } catch (e) {
        error = e;
      }
      expect(error, `case ${k} (${what}) was accepted`).toBeInstanceOf(CheckpointError);
      expect((error as Error).message.startsWith(`${file}: `)).toBe(true);
      kinds.set((error as CheckpointError).kind, (kinds.get((error as CheckpointError).kind) ?? 0) + 1);
      expect(performance.now() - t0, `case ${k} (${what}) took too long`).toBeLessThan(CASE_MS);
    }
    // The mutations reach the checksum, the length checks and the magic.
    expect(kinds.get('corrupt')).toBeGreaterThan(50);
    expect(kinds.get('truncated')).toBeGreaterThan(0);
  });
});
