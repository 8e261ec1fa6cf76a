/**
 * Tensors handed to and read from onnxruntime sessions, and their mapping to the IR's element
 * types and constant tensors. The rest of the tool passes `Tensor` values around without
 * knowing which runtime made them.
 */
import ort from 'onnxruntime-node';
import { DataType } from '../ir/types.js';
import { numElements, type TensorData } from '../ir/tensor.js';

export type Tensor = ort.Tensor;

const ELEM_TYPES: Record<string, number> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, int64: DataType.INT64, int32: DataType.INT32, uint8: DataType.UINT8,
  int8: DataType.INT8, bool: DataType.BOOL, float16: DataType.FLOAT16, uint16: DataType.UINT16, int16: DataType.INT16,
};

/** The IR element type of a runtime tensor (UNDEFINED for one the IR does not name). */
export function elemTypeOf(t: Tensor): number {
  return ELEM_TYPES[t.type] ?? DataType.UNDEFINED;
}

export function float32Tensor(data: Float32Array, dims: readonly number[]): Tensor {
  return new ort.Tensor('float32', data, dims);
}

export function int64Tensor(data: BigInt64Array, dims: readonly number[]): Tensor {
  return new ort.Tensor('int64', data, dims);
}

export function scalarTensor(value: number): Tensor {
  return new ort.Tensor('float32', new Float32Array([value]), []);
}

/** The first `n` images of a minibatch buffer as an [n, C, H, W] tensor (a view, no copy). */
export function imagesTensor(x: Float32Array, n: number, sampleDims: readonly number[]): Tensor {
  return float32Tensor(x.subarray(0, n * numElements(sampleDims)), [n, ...sampleDims]);
}

/** The first `n` labels of a minibatch as an [n] int64 tensor (a view, no copy). */
export function labelsTensor(y: BigInt64Array, n: number): Tensor {
  return int64Tensor(y.subarray(0, n), [n]);
}

/** A zero-filled tensor of an IR element type (probe inputs). */
export function zerosTensor(elemType: number, dims: number[]): Tensor {
  const n = numElements(dims);
  switch (elemType) {
    case DataType.FLOAT:
      return new ort.Tensor('float32', new Float32Array(n), dims);
    case DataType.INT64:
      return new ort.Tensor('int64', new BigInt64Array(n), dims);
    case DataType.INT32:
      return new ort.Tensor('int32', new Int32Array(n), dims);
    case DataType.UINT8:
      return new ort.Tensor('uint8', new Uint8Array(n), dims);
    case DataType.BOOL:
      return new ort.Tensor('bool', new Uint8Array(n), dims);
    default:
      throw new Error(`cannot make a probe input of element type ${elemType}`);
  }
}

/** A runtime result as an IR constant tensor (a copy of its bytes). */
export function toTensorData(name: string, t: Tensor): TensorData {
  const dataType = ELEM_TYPES[t.type];
  if (dataType === undefined) throw new Error(`'${name}' has element type ${t.type}, which the IR cannot hold as a constant`);
  const d = t.data as ArrayBufferView;
  const raw = new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
  return { name, dataType, dims: [...t.dims], raw };
}
