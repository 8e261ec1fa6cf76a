/**
 * CIFAR-10 / CIFAR-100 binary format.
 *   CIFAR-10 record:  1 label byte, then 3072 pixel bytes (1024 R, 1024 G, 1024 B; each a
 *                     row-major 32×32 plane). Files data_batch_1..5.bin, test_batch.bin,
 *                     class names in batches.meta.txt.
 *   CIFAR-100 record: coarse label byte, fine label byte, then 3072 pixel bytes as above.
 *                     Files train.bin, test.bin; fine_label_names.txt, coarse_label_names.txt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataError } from '../errors.js';
import { readRegularFile } from '../../util/limits.js';

/** The largest CIFAR file (CIFAR-100 train.bin) is 150 MiB; anything far larger is not CIFAR. */
const MAX_CIFAR_BYTES = 2 ** 30;
import type { LoadedSource, RawPart } from '../source.js';

const PIXELS = 3072;
export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

type Variant = 10 | 100;

function readNames(file: string): string[] | null {
  try {
    const names = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    return names.length ? names : null;
  } catch {
    return null;
  }
}

function numericNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i));
}

/** Names of the training and test files in a CIFAR directory, or null if it is not one. */
export function findCifarFiles(dir: string): { variant: Variant; dir: string; train: string[]; test: string[] } | null {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return null;
  }
  for (const sub of ['cifar-10-batches-bin', 'cifar-100-binary']) {
    if (entries.includes(sub)) {
      const found = findCifarFiles(path.join(dir, sub));
      if (found) return found;
    }
  }
  const batches = entries
    .filter((e) => /^data_batch_\d+\.bin$/.test(e))
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  if (batches.length || entries.includes('test_batch.bin')) {
    return {
      variant: 10, dir,
      train: batches.map((e) => path.join(dir, e)),
      test: entries.includes('test_batch.bin') ? [path.join(dir, 'test_batch.bin')] : [],
    };
  }
  if (entries.includes('train.bin') || entries.includes('test.bin')) {
    return {
      variant: 100, dir,
      train: entries.includes('train.bin') ? [path.join(dir, 'train.bin')] : [],
      test: entries.includes('test.bin') ? [path.join(dir, 'test.bin')] : [],
    };
  }
  return null;
}

/** Which variant a single .bin file is: by name, else by which record size divides its length. */
function variantOfFile(file: string): Variant {
  const base = path.basename(file);
  if (/^(data_batch_\d+|test_batch)\.bin$/.test(base)) return 10;
  if (/^(train|test)\.bin$/.test(base)) return 100;
  const size = fs.statSync(file).size;
  if (size % (PIXELS + 1) === 0) return 10;
  if (size % (PIXELS + 2) === 0) return 100;
  throw new DataError(
    `${file}: size ${size} bytes is not a whole number of CIFAR-10 (3073-byte) or CIFAR-100 (3074-byte) records. ` +
    `Check that the file is a CIFAR binary file and is complete.`,
  );
}

function classNames(dir: string, variant: Variant, labels: 'fine' | 'coarse'): string[] {
  if (variant === 10) return readNames(path.join(dir, 'batches.meta.txt')) ?? [...CIFAR10_CLASSES];
  if (labels === 'coarse') return readNames(path.join(dir, 'coarse_label_names.txt')) ?? numericNames(20);
  return readNames(path.join(dir, 'fine_label_names.txt')) ?? numericNames(100);
}

/** Reads CIFAR files into HWC RGB storage; labels checked against `numClasses`. */
function readRecords(files: string[], variant: Variant, labels: 'fine' | 'coarse', numClasses: number): RawPart {
  const rec = PIXELS + (variant === 10 ? 1 : 2);
  const bufs = files.map((f) => {
    const b = readRegularFile(f, MAX_CIFAR_BYTES, (m) => new DataError(`${f}: ${m}`));
    if (b.length === 0 || b.length % rec !== 0) {
      throw new DataError(
        `${f}: size ${b.length} bytes is not a whole number of ${rec}-byte CIFAR-${variant} records. ` +
        `Check that the file is complete (re-download/extract it).`,
      );
    }
    return b;
  });
  const total = bufs.reduce((s, b) => s + b.length / rec, 0);
  const store = new Uint8Array(total * PIXELS);
  const lab = new Int32Array(total);
  const labelOffset = variant === 10 ? 0 : labels === 'coarse' ? 0 : 1;
  let n = 0;
  bufs.forEach((b, fi) => {
    const count = b.length / rec;
    for (let r = 0; r < count; r++, n++) {
      const base = r * rec;
      const l = b[base + labelOffset]!;
      if (l >= numClasses) {
        throw new DataError(
          `${files[fi]}: record ${r} has ${variant === 100 ? labels + ' ' : ''}label ${l}, but there are only ` +
          `${numClasses} classes (0..${numClasses - 1}). The file is corrupt or not CIFAR-${variant}` +
          `${variant === 100 ? ' (try the other --cifar-labels setting)' : ''}.`,
        );
      }
      lab[n] = l;
      const px = base + rec - PIXELS;
      const o = n * PIXELS;
      for (let p = 0; p < 1024; p++) {
        store[o + 3 * p] = b[px + p]!;
        store[o + 3 * p + 1] = b[px + 1024 + p]!;
        store[o + 3 * p + 2] = b[px + 2048 + p]!;
      }
    }
  });
  return { kind: 'raw', store, height: 32, width: 32, channels: 3, labels: lab, files, origin: files.join(', ') };
}

/** True if `p` is a CIFAR directory or a .bin file. */
export function isCifar(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (st.isFile()) return p.toLowerCase().endsWith('.bin');
    return findCifarFiles(p) !== null;
  } catch {
    return false;
  }
}

/**
 * Loads a CIFAR directory (training batches as `train`, test batch as `test`) or one .bin
 * file (all of it as `train`).
 */
export function loadCifar(p: string, labels: 'fine' | 'coarse' = 'fine'): LoadedSource {
  const abs = path.resolve(p);
  const st = fs.statSync(abs);
  if (st.isFile()) {
    const variant = variantOfFile(abs);
    const classes = classNames(path.dirname(abs), variant, labels);
    return {
      format: variant === 10 ? 'CIFAR-10 binary' : `CIFAR-100 binary (${labels} labels)`,
      classes, train: readRecords([abs], variant, labels, classes.length), location: abs,
    };
  }
  const found = findCifarFiles(abs);
  if (!found) throw new DataError(`${abs}: no CIFAR binary files (data_batch_*.bin, test_batch.bin, train.bin, test.bin) found.`);
  const classes = classNames(found.dir, found.variant, labels);
  const format = found.variant === 10 ? 'CIFAR-10 binary' : `CIFAR-100 binary (${labels} labels)`;
  if (found.train.length === 0) {
    // Only a test file: use it as the data (the caller decides its role).
    return { format, classes, train: readRecords(found.test, found.variant, labels, classes.length), location: abs };
  }
  const src: LoadedSource = { format, classes, train: readRecords(found.train, found.variant, labels, classes.length), location: abs };
  if (found.test.length) src.test = readRecords(found.test, found.variant, labels, classes.length);
  return src;
}
