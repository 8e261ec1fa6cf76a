/**
 * Constant tensors (initializers, Constant values, tensor attributes).
 * Data is always held as little-endian raw bytes, whatever field the file used,
 * so a load → save round trip keeps every value bit-identical.
 */
import { DataType } from './types.js';

export interface TensorData {
  name: string;
  dataType: number;
  dims: number[];
  /** Little-endian element bytes (empty for STRING tensors). */
  raw: Uint8Array;
  /** Only for STRING tensors. */
  strings?: Uint8Array[];
  docString?: string;
}

const BYTES: Record<number, number> = {
  [DataType.FLOAT]: 4, [DataType.UINT8]: 1, [DataType.INT8]: 1, [DataType.UINT16]: 2, [DataType.INT16]: 2,
  [DataType.INT32]: 4, [DataType.INT64]: 8, [DataType.BOOL]: 1, [DataType.FLOAT16]: 2, [DataType.DOUBLE]: 8,
  [DataType.UINT32]: 4, [DataType.UINT64]: 8, [DataType.COMPLEX64]: 8, [DataType.COMPLEX128]: 16,
  [DataType.BFLOAT16]: 2, [DataType.FLOAT8E4M3FN]: 1, [DataType.FLOAT8E4M3FNUZ]: 1, [DataType.FLOAT8E5M2]: 1,
  [DataType.FLOAT8E5M2FNUZ]: 1,
};

export function bytesPerElement(dataType: number): number {
  const b = BYTES[dataType];
  if (b === undefined) throw new Error(`tensor element type ${dataType} has no fixed byte size`);
  return b;
}

export function numElements(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A typed-array view of `raw`, copying only when the bytes are not aligned. */
function view<T>(raw: Uint8Array, size: number, make: (b: ArrayBufferLike, o: number, n: number) => T): T {
  if (raw.byteOffset % size === 0) return make(raw.buffer, raw.byteOffset, raw.byteLength / size);
  const copy = raw.slice();
  return make(copy.buffer, 0, copy.byteLength / size);
}

export function toFloat32(t: TensorData): Float32Array {
  if (t.dataType === DataType.FLOAT) return view(t.raw, 4, (b, o, n) => new Float32Array(b, o, n));
  if (t.dataType === DataType.DOUBLE) return Float32Array.from(view(t.raw, 8, (b, o, n) => new Float64Array(b, o, n)));
  if (t.dataType === DataType.INT64) return Float32Array.from(toInt64(t), (v) => Number(v));
  if (t.dataType === DataType.INT32) return Float32Array.from(view(t.raw, 4, (b, o, n) => new Int32Array(b, o, n)));
  throw new Error(`tensor '${t.name}': cannot read type ${t.dataType} as float32`);
}

export function toInt64(t: TensorData): BigInt64Array {
  if (t.dataType === DataType.INT64) return view(t.raw, 8, (b, o, n) => new BigInt64Array(b, o, n));
  if (t.dataType === DataType.INT32) return BigInt64Array.from(view(t.raw, 4, (b, o, n) => new Int32Array(b, o, n)), (v) => BigInt(v));
  throw new Error(`tensor '${t.name}': cannot read type ${t.dataType} as int64`);
}

/** Integer values as JS numbers (shape arithmetic; int64 extremes saturate to ±2^63 as floats). */
export function toNumbers(t: TensorData): number[] {
  switch (t.dataType) {
    case DataType.INT64:
      return Array.from(toInt64(t), (v) => Number(v));
    case DataType.INT32:
      return Array.from(view(t.raw, 4, (b, o, n) => new Int32Array(b, o, n)));
    case DataType.FLOAT:
    case DataType.DOUBLE:
      return Array.from(toFloat32(t));
    case DataType.BOOL:
    case DataType.UINT8:
      return Array.from(t.raw);
    case DataType.INT8:
      return Array.from(new Int8Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength));
    default:
      throw new Error(`tensor '${t.name}': cannot read type ${t.dataType} as numbers`);
  }
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function floatTensor(name: string, dims: number[], data: ArrayLike<number>): TensorData {
  if (numElements(dims) !== data.length) throw new Error(`tensor '${name}': ${data.length} values for dims [${dims}]`);
  const arr = data instanceof Float32Array ? data : Float32Array.from(data);
  return { name, dataType: DataType.FLOAT, dims: [...dims], raw: bytesOf(arr) };
}

/** IEEE binary16 bits of a float32 value, rounded to nearest even (overflow → ±Inf, NaN kept). */
export function float16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-one mantissa into place, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is the right rounding
  return sign | h;
}

/** A FLOAT16 tensor holding `data` rounded to half precision. */
export function float16Tensor(name: string, dims: number[], data: ArrayLike<number>): TensorData {
  if (numElements(dims) !== data.length) throw new Error(`tensor '${name}': ${data.length} values for dims [${dims}]`);
  const bits = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) bits[i] = float16Bits(data[i]!);
  return { name, dataType: DataType.FLOAT16, dims: [...dims], raw: new Uint8Array(bits.buffer) };
}

export function int64Tensor(name: string, dims: number[], data: ArrayLike<number | bigint>): TensorData {
  if (numElements(dims) !== data.length) throw new Error(`tensor '${name}': ${data.length} values for dims [${dims}]`);
  const arr = new BigInt64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    arr[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
  }
  return { name, dataType: DataType.INT64, dims: [...dims], raw: bytesOf(arr) };
}

export function scalarFloat(name: string, v: number): TensorData {
  return floatTensor(name, [], [v]);
}

/** A tensor of the given type from values (integer and float types; used by constant folding). */
export function tensorFromNumbers(name: string, dataType: number, dims: number[], values: ArrayLike<number>): TensorData {
  switch (dataType) {
    case DataType.FLOAT:
      return floatTensor(name, dims, values);
    case DataType.INT64:
      return int64Tensor(name, dims, values);
    case DataType.INT32:
      return { name, dataType, dims: [...dims], raw: bytesOf(Int32Array.from(values)) };
    case DataType.DOUBLE:
      return { name, dataType, dims: [...dims], raw: bytesOf(Float64Array.from(values)) };
    case DataType.BOOL:
    case DataType.UINT8:
      return { name, dataType, dims: [...dims], raw: Uint8Array.from(values) };
    default:
      throw new Error(`tensor '${name}': cannot build type ${dataType} from numbers`);
  }
}

export function cloneTensor(t: TensorData, name = t.name): TensorData {
  return { ...t, name, dims: [...t.dims], raw: t.raw.slice(), strings: t.strings?.map((s) => s.slice()) };
}
