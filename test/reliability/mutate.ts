/** Seeded byte-level mutations for the fuzzers: flips, overwrites, truncations, insertions, repeats. */
import { Rng } from '../../src/util/rng.js';

export type Mutation = 'flip' | 'overwrite' | 'truncate' | 'insert' | 'repeat' | 'zero';
const KINDS: Mutation[] = ['flip', 'overwrite', 'truncate', 'insert', 'repeat', 'zero'];

/** A mutated copy of `bytes` (never identical to it) and what was done, for the failure message. */
export function mutate(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string } {
  const n = bytes.length;
  const kind = KINDS[rng.int(KINDS.length)]!;
  const at = rng.int(n);
  const span = 1 + rng.int(Math.min(64, n - at));
  switch (kind) {
    case 'flip': {
      const out = bytes.slice();
      const count = 1 + rng.int(8);
      for (let k = 0; k < count; k++) out[rng.int(n)] ^= 1 << rng.int(8);
      return changed(bytes, out, `flip ${count} bits`);
    }
    case 'overwrite': {
      const out = bytes.slice();
      for (let k = 0; k < span; k++) out[at + k] = rng.int(256);
      return changed(bytes, out, `overwrite ${span} bytes at ${at}`);
    }
    case 'zero': {
      const out = bytes.slice();
      out.fill(0, at, at + span);
      return changed(bytes, out, `zero ${span} bytes at ${at}`);
    }
    case 'truncate':
      return { bytes: bytes.slice(0, at), what: `truncate to ${at} bytes` };
    case 'insert': {
      const extra = Uint8Array.from({ length: span }, () => rng.int(256));
      return { bytes: concat(bytes.subarray(0, at), extra, bytes.subarray(at)), what: `insert ${span} bytes at ${at}` };
    }
    case 'repeat':
      return { bytes: concat(bytes.subarray(0, at + span), bytes.subarray(at)), what: `repeat ${span} bytes at ${at}` };
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function changed(original: Uint8Array, out: Uint8Array, what: string): { bytes: Uint8Array; what: string } {
  // A mutation that happens to change nothing (overwrite with the same bytes) flips one more bit.
  if (out.every((b, i) => b === original[i])) out[0] ^= 1;
  return { bytes: out, what };
}
