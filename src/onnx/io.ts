/** Reading and writing .onnx files (with optional external-data files), atomically. */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, fstatSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ModelProto } from './schema.js';
import { writeFileAtomic } from '../util/fs.js';
import { modelFromProto, modelToProto, tensorToProto, type ExternalRef } from './codec.js';
import type { Model } from '../ir/graph.js';
import type { TensorData } from '../ir/tensor.js';

/** A model file that cannot be read, with the file named and what to do. */
export class ModelFileError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ModelFileError';
  }
}

export function decodeModel(bytes: Uint8Array, file = '<bytes>', modelDir?: string): Model {
  if (bytes.length === 0) throw new ModelFileError(file, 'the file is empty; re-export the model');
  let proto: unknown;
  try {
    proto = ModelProto.decode(bytes);
  } catch (e) {
    const why = (e as Error).message;
    throw new ModelFileError(
      file,
      `not a readable ONNX model (${/index out of range/.test(why) ? 'the file is truncated' : 'corrupt protobuf'}: ${why}). ` +
        'Re-export or re-download it; a partial copy is the usual cause.',
    );
  }
  const fds = new Map<string, number>();
  const readExternal = (ref: ExternalRef, tensorName: string): Uint8Array => {
    if (!modelDir) throw new ModelFileError(file, `tensor '${tensorName}' uses external data '${ref.location}' but the model was not loaded from a file`);
    const path = resolve(modelDir, ref.location);
    if (!existsSync(path))
      throw new ModelFileError(file, `tensor '${tensorName}' needs external data file '${ref.location}', not found next to the model (${path})`);
    let fd = fds.get(path);
    if (fd === undefined) fds.set(path, (fd = openSync(path, 'r')));
    const size = fstatSync(fd).size;
    const length = ref.length ?? size - ref.offset;
    if (ref.offset + length > size)
      throw new ModelFileError(file, `tensor '${tensorName}' reads bytes ${ref.offset}..${ref.offset + length} of '${ref.location}', which has only ${size}: the data file is truncated`);
    const out = new Uint8Array(length);
    readSync(fd, out, 0, length, ref.offset);
    return out;
  };
  try {
    return modelFromProto(proto, readExternal);
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(file, (e as Error).message);
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

export function loadModel(path: string): Model {
  if (!existsSync(path)) throw new ModelFileError(path, 'no such file');
  if (statSync(path).isDirectory()) throw new ModelFileError(path, 'is a folder; give the .onnx file');
  return decodeModel(readFileSync(path), path, dirname(resolve(path)));
}

export interface SaveOptions {
  /** Write initializers of at least `threshold` bytes (default 1024) to this file beside the model. */
  externalData?: { location?: string; threshold?: number };
}

/** Serialises a model with all tensors inline (what InferenceSession takes from memory). */
export function encodeModel(model: Model): Uint8Array {
  return ModelProto.encode(ModelProto.fromObject(modelToProto(model))).finish();
}

export function saveModel(model: Model, path: string, opts: SaveOptions = {}): void {
  if (!opts.externalData) {
    writeFileAtomic(path, encodeModel(model));
    return;
  }
  const location = opts.externalData.location ?? `${basename(path)}.data`;
  const threshold = opts.externalData.threshold ?? 1024;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const sink = (t: TensorData) => {
    if (t.raw.byteLength < threshold) return tensorToProto(t);
    // Align each tensor to 4 KiB so the data file can be memory-mapped.
    const pad = (4096 - (offset % 4096)) % 4096;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    chunks.push(t.raw);
    const entry = {
      name: t.name,
      dataType: t.dataType,
      dims: t.dims,
      dataLocation: 1,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(t.raw.byteLength) },
      ],
    };
    offset += t.raw.byteLength;
    return entry;
  };
  const bytes = ModelProto.encode(ModelProto.fromObject(modelToProto(model, sink))).finish();
  writeFileAtomic(join(dirname(path), location), Buffer.concat(chunks));
  writeFileAtomic(path, bytes);
}
