/** Reading and writing .onnx files (with optional external-data files), atomically. */
import { closeSync, existsSync, openSync, readSync, fstatSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { checkRegularFile, readRegularFile } from '../util/limits.js';
import { pathInside, PathError } from '../util/paths.js';
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
    const path = externalDataPath(file, modelDir, ref.location, tensorName);
    if (!existsSync(path))
      throw new ModelFileError(file, `tensor '${tensorName}' needs external data file '${ref.location}', not found next to the model (${path})`);
    if (!Number.isSafeInteger(ref.offset) || ref.offset < 0 || (ref.length !== undefined && (!Number.isSafeInteger(ref.length) || ref.length < 0)))
      throw new ModelFileError(file, `tensor '${tensorName}' has an invalid external-data offset/length (${ref.offset}/${ref.length}); the model file is corrupt`);
    let fd = fds.get(path);
    if (fd === undefined) {
      checkRegularFile(path, Number.MAX_SAFE_INTEGER, (m) => new ModelFileError(file, `external data file '${ref.location}' (${path}) ${m}`));
      fds.set(path, (fd = openSync(path, 'r')));
    }
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

/**
 * Where an external-data `location` points: relative, and inside the model's own folder (a crafted
 * model must not read /etc/passwd or a neighbour's files through it).
 */
function externalDataPath(file: string, modelDir: string, location: string, tensorName: string): string {
  if (isAbsolute(location))
    throw new ModelFileError(file, `tensor '${tensorName}' points its external data at the absolute path '${location}'; only files inside the model's folder are read`);
  try {
    return pathInside(modelDir, [location], `external data of tensor '${tensorName}'`);
  } catch (e) {
    if (e instanceof PathError) throw new ModelFileError(file, `${e.message}; only files inside the model's folder are read`);
    throw e;
  }
}

/** protobuf's own limit on one message: an .onnx file cannot be larger (big weights go to external data). */
export const MAX_MODEL_FILE_BYTES = 2 ** 31 - 1;

export function loadModel(path: string): Model {
  const bytes = readRegularFile(path, MAX_MODEL_FILE_BYTES, (m) =>
    new ModelFileError(path, m === 'is a folder; give a regular file' ? 'is a folder; give the .onnx file' : m));
  return decodeModel(bytes, path, dirname(resolve(path)));
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
  writeFileAtomic(pathInside(dirname(resolve(path)), [location], 'external data file'), Buffer.concat(chunks));
  writeFileAtomic(path, bytes);
}
