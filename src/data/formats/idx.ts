/**
 * IDX files (MNIST, Fashion-MNIST, …), gzipped or not:
 *   {train,t10k}-images-idx3-ubyte[.gz]  magic 0x00000803, N, rows, cols (big-endian u32), N·rows·cols bytes
 *   {train,t10k}-labels-idx1-ubyte[.gz]  magic 0x00000801, N, then N label bytes
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { DataError } from '../errors.js';
import { readRegularFile } from '../../util/limits.js';
import { numElements } from '../../ir/tensor.js';
import type { LoadedSource, RawPart } from '../source.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

const IMAGES_RE = /^(.*)-images[-.]idx3-ubyte(\.gz)?$/;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads an IDX file of unsigned bytes (type 0x08), gunzipping when it starts with the gzip magic. */
/** IDX files hold at most a few GiB of bytes (buffer limit). */
const MAX_IDX_BYTES = 2 ** 32;

export function readIdx(file: string): IdxArray {
  let buf: Buffer = readRegularFile(file, MAX_IDX_BYTES, (m) => new DataError(`${file}: ${m}`));
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e) {
      throw new DataError(`${file}: gzip data is corrupt (${(e as Error).message}). Re-download the file.`);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) {
    throw new DataError(`${file}: not an IDX file (bad magic number). Expected MNIST-style *-idx3-ubyte / *-idx1-ubyte files.`);
  }
  const type = buf[2]!;
  const ndim = buf[3]!;
  if (type !== 0x08) {
    throw new DataError(`${file}: IDX element type 0x${type.toString(16)} is not supported; only unsigned bytes (0x08).`);
  }
  if (ndim < 1 || buf.length < 4 + 4 * ndim) throw new DataError(`${file}: truncated IDX header.`);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const n = numElements(dims);
  const off = 4 + 4 * ndim;
  if (buf.length - off !== n) {
    throw new DataError(
      `${file}: IDX header says ${dims.join('×')} = ${n} bytes of data but the file holds ${buf.length - off}. ` +
      `The file is truncated or corrupt; re-download it.`,
    );
  }
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + off, n) };
}

function labelsFileFor(imagesFile: string): string {
  const dir = path.dirname(imagesFile);
  const base = path.basename(imagesFile);
  const candidates = [
    base.replace(/images([-.])idx3/, 'labels$1idx1'),
    base.replace(/images([-.])idx3/, 'labels$1idx1').replace(/\.gz$/, ''),
    base.replace(/images([-.])idx3/, 'labels$1idx1').replace(/\.gz$/, '') + '.gz',
  ];
  for (const c of candidates) {
    const p = path.join(dir, c);
    if (fs.existsSync(p)) return p;
  }
  throw new DataError(`${imagesFile}: no matching labels file (expected ${path.join(dir, candidates[0]!)}).`);
}

function readPair(imagesFile: string): RawPart {
  const labelsFile = labelsFileFor(imagesFile);
  const im = readIdx(imagesFile);
  const lb = readIdx(labelsFile);
  if (im.dims.length !== 3) {
    throw new DataError(`${imagesFile}: expected a 3-dimensional IDX image file (N×rows×cols), got ${im.dims.length} dimensions.`);
  }
  if (lb.dims.length !== 1) {
    throw new DataError(`${labelsFile}: expected a 1-dimensional IDX label file, got ${lb.dims.length} dimensions.`);
  }
  const [n, h, w] = im.dims as [number, number, number];
  if (lb.dims[0] !== n) {
    throw new DataError(`${labelsFile} has ${lb.dims[0]} labels but ${imagesFile} has ${n} images; they must match.`);
  }
  return {
    kind: 'raw', store: im.data, height: h, width: w, channels: 1,
    labels: Int32Array.from(lb.data), files: [imagesFile, labelsFile], origin: imagesFile,
  };
}

/** Image files in a directory keyed by role ('train' | 'test'), or null if none. */
function findIdx(dir: string): { train?: string; test?: string } | null {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir).sort();
  } catch {
    return null;
  }
  const out: { train?: string; test?: string } = {};
  for (const e of entries) {
    const m = IMAGES_RE.exec(e);
    if (!m) continue;
    const prefix = m[1]!.toLowerCase();
    const role = /t10k|test/.test(prefix) ? 'test' : 'train';
    // Prefer the uncompressed file if both exist (sorted: plain name sorts before .gz).
    if (!out[role]) out[role] = path.join(dir, e);
  }
  return out.train || out.test ? out : null;
}

export function isIdx(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (st.isFile()) return IMAGES_RE.test(path.basename(p)) || /idx\d-ubyte(\.gz)?$/.test(p);
    return findIdx(p) !== null;
  } catch {
    return false;
  }
}

function classesFor(location: string, parts: RawPart[]): string[] {
  let max = 0;
  for (const p of parts) for (let i = 0; i < p.labels.length; i++) if (p.labels[i]! > max) max = p.labels[i]!;
  if (/fashion/i.test(location)) {
    if (max >= 10) {
      const bad = parts.find((p) => p.labels.some((l) => l >= 10))!;
      throw new DataError(
        `${bad.files[1]}: label ${max} is out of range for Fashion-MNIST (10 classes, 0..9). The labels file is corrupt.`,
      );
    }
    return [...FASHION_MNIST_CLASSES];
  }
  // Without a class list the labels define the classes (0..max). A label far above the others
  // (a corrupt byte: 255 would make 256 classes) leaves values in between unused: refuse that
  // rather than train hundreds of empty classes. Up to 10 classes, gaps are allowed (MNIST-style
  // subsets may lack a digit).
  const count = Math.max(10, max + 1);
  if (count > 10) {
    const seen = new Uint8Array(count);
    for (const p of parts) for (let i = 0; i < p.labels.length; i++) seen[p.labels[i]!] = 1;
    const unused = seen.reduce((a, v) => a + (v ? 0 : 1), 0);
    if (unused > 0) {
      const bad = parts.find((p) => p.labels.includes(max))!;
      const at = bad.labels.indexOf(max);
      throw new DataError(
        `${bad.files[1]}: sample ${at} has label ${max}, but ${unused} of the labels 0..${max} never occur: the labels file is corrupt ` +
        `or does not belong to ${bad.files[0]}. Labels must be 0..K-1 for K classes.`,
      );
    }
  }
  return Array.from({ length: count }, (_, i) => String(i));
}

/**
 * Loads IDX data from a directory ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]) or
 * from one images file (its labels file beside it).
 */
export function loadIdx(p: string): LoadedSource {
  const abs = path.resolve(p);
  if (fs.statSync(abs).isFile()) {
    let images = abs;
    if (/labels[-.]idx1/.test(path.basename(abs))) {
      const guess = path.join(path.dirname(abs), path.basename(abs).replace(/labels([-.])idx1/, 'images$1idx3'));
      if (!fs.existsSync(guess)) throw new DataError(`${abs} is a labels file; point --data at the images file (*-images-idx3-ubyte).`);
      images = guess;
    }
    const part = readPair(images);
    return { format: 'IDX', classes: classesFor(abs, [part]), train: part, location: abs };
  }
  const found = findIdx(abs);
  if (!found) throw new DataError(`${abs}: no IDX image files (*-images-idx3-ubyte[.gz]) found.`);
  const train = readPair((found.train ?? found.test)!);
  const test = found.train && found.test ? readPair(found.test) : undefined;
  const src: LoadedSource = {
    format: /fashion/i.test(abs) ? 'IDX (Fashion-MNIST)' : 'IDX', classes: classesFor(abs, test ? [train, test] : [train]),
    train, location: abs,
  };
  if (test) src.test = test;
  return src;
}
