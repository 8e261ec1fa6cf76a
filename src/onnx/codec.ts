/**
 * Conversion between decoded ONNX protobuf messages and the graph IR.
 * Typed tensor fields (float_data, int64_data, …) are turned into raw bytes so
 * the IR has one representation; external data is resolved by the caller.
 */
import { AttrType, DataType } from '../ir/types.js';
import { Graph, type Attr, type Model, type Node, type ValueInfo, type ValueType } from '../ir/graph.js';
import { bytesPerElement, numElements, type TensorData } from '../ir/tensor.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Proto = any;

/** protobufjs gives int64 as Long objects or numbers depending on the field. */
export function toNum(x: unknown): number {
  if (x === undefined || x === null) return 0;
  if (typeof x === 'number') return x;
  if (typeof x === 'object' && 'low' in (x as object)) {
    const l = x as { low: number; high: number; unsigned?: boolean };
    return l.high * 4294967296 + (l.low >>> 0);
  }
  return Number(x);
}

function toBig(x: unknown): bigint {
  if (typeof x === 'object' && x !== null && 'low' in x) {
    const l = x as { low: number; high: number };
    return (BigInt(l.high) << 32n) | BigInt(l.low >>> 0);
  }
  return BigInt(Math.trunc(Number(x)));
}

const utf8 = new TextDecoder();
const utf8e = new TextEncoder();

export interface ExternalRef {
  location: string;
  offset: number;
  length?: number;
}

/** Reads `external_data` entries of a TensorProto, or undefined when stored inline. */
export function externalRef(t: Proto): ExternalRef | undefined {
  if (toNum(t.dataLocation) !== 1) return undefined;
  const kv: Record<string, string> = {};
  for (const e of t.externalData ?? []) kv[e.key] = e.value;
  if (!kv.location) throw new Error(`tensor '${t.name}' is marked external but has no location`);
  return { location: kv.location, offset: Number(kv.offset ?? 0), length: kv.length !== undefined ? Number(kv.length) : undefined };
}

export type ExternalReader = (ref: ExternalRef, tensorName: string) => Uint8Array;

function fixedElementBytes(dataType: number): number | undefined {
  try {
    return bytesPerElement(dataType);
  } catch {
    return undefined;
  }
}

/** The TensorProto field holding the values of `dataType` when they are not in raw_data. */
function typedField(dataType: number): { key: string; name: string } {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return { key: 'floatData', name: 'float_data' };
    case DataType.DOUBLE:
      return { key: 'doubleData', name: 'double_data' };
    case DataType.INT64:
      return { key: 'int64Data', name: 'int64_data' };
    case DataType.UINT64:
    case DataType.UINT32:
      return { key: 'uint64Data', name: 'uint64_data' };
    default:
      return { key: 'int32Data', name: 'int32_data' };
  }
}

export function tensorFromProto(t: Proto, readExternal?: ExternalReader): TensorData {
  const dims: number[] = (t.dims ?? []).map(toNum);
  const dataType = toNum(t.dataType);
  const name = t.name ?? '';
  const base = { name, dataType, dims, ...(t.docString ? { docString: t.docString } : {}) };
  if (dataType === DataType.STRING) {
    return { ...base, raw: new Uint8Array(0), strings: (t.stringData ?? []).map((s: Uint8Array) => new Uint8Array(s)) };
  }
  const ext = externalRef(t);
  if (ext) {
    if (!readExternal) throw new Error(`tensor '${name}' uses external data '${ext.location}' but no model directory is known`);
    return { ...base, raw: readExternal(ext, name) };
  }
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new Error(`tensor '${name}' has invalid dims [${dims}]`);
  const count = numElements(dims);
  if (t.rawData && t.rawData.length > 0) {
    // Declared size against the bytes actually present, before anything reads them as that shape.
    const fixed = fixedElementBytes(dataType);
    if (fixed !== undefined && t.rawData.length !== count * fixed)
      throw new Error(`tensor '${name}': raw_data holds ${t.rawData.length} bytes but dims [${dims}] of element type ${dataType} need ${count * fixed}`);
    return { ...base, raw: new Uint8Array(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength) };
  }
  const bytes = bytesPerElement(dataType);
  // The typed fields are checked against the declared count before allocating count × bytes:
  // a few bytes of protobuf may declare a tensor of any size.
  const field = typedField(dataType);
  const values = (t[field.key] as any[] | undefined) ?? [];
  const expected = dataType === DataType.COMPLEX64 ? 2 * count : count;
  if (values.length !== expected) throw new Error(`tensor '${name}': ${field.name} holds ${values.length} values but dims [${dims}] need ${expected}`);
  const out = new Uint8Array(count * bytes);
  const dv = new DataView(out.buffer);
  const need = (arr: any[] | undefined): any[] => arr ?? [];
  switch (dataType) {
    case DataType.FLOAT:
      need(t.floatData).forEach((v: number, i: number) => dv.setFloat32(i * 4, v, true));
      break;
    case DataType.COMPLEX64: {
      const a = t.floatData ?? [];
      a.forEach((v: number, i: number) => dv.setFloat32(i * 4, v, true));
      break;
    }
    case DataType.DOUBLE:
      need(t.doubleData).forEach((v: number, i: number) => dv.setFloat64(i * 8, v, true));
      break;
    case DataType.INT64:
      need(t.int64Data).forEach((v: unknown, i: number) => dv.setBigInt64(i * 8, toBig(v), true));
      break;
    case DataType.UINT64:
    case DataType.UINT32:
      need(t.uint64Data).forEach((v: unknown, i: number) =>
        bytes === 8 ? dv.setBigUint64(i * 8, toBig(v), true) : dv.setUint32(i * 4, toNum(v), true));
      break;
    case DataType.INT32:
      need(t.int32Data).forEach((v: number, i: number) => dv.setInt32(i * 4, v, true));
      break;
    default: {
      // 8- and 16-bit types (and bool) are stored one per int32 value.
      need(t.int32Data).forEach((v: number, i: number) => {
        if (bytes === 1) dv.setUint8(i, v & 0xff);
        else dv.setUint16(i * 2, v & 0xffff, true);
      });
    }
  }
  return { ...base, raw: out };
}

export function tensorToProto(t: TensorData): Proto {
  const p: Proto = { name: t.name, dataType: t.dataType, dims: t.dims };
  if (t.docString) p.docString = t.docString;
  if (t.dataType === DataType.STRING) p.stringData = t.strings ?? [];
  else p.rawData = t.raw;
  return p;
}

function typeFromProto(tp: Proto | undefined): ValueType | undefined {
  if (!tp) return undefined;
  if (tp.tensorType) {
    const tt = tp.tensorType;
    const shape = tt.shape
      ? (tt.shape.dim ?? []).map((d: Proto) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNum(d.dimValue) : null))
      : undefined;
    return { kind: 'tensor', elemType: toNum(tt.elemType), ...(shape ? { shape } : {}) };
  }
  return { kind: 'opaque', proto: tp };
}

function typeToProto(t: ValueType | undefined): Proto | undefined {
  if (!t) return undefined;
  if (t.kind === 'opaque') return t.proto;
  const tensorType: Proto = { elemType: t.elemType };
  if (t.shape)
    tensorType.shape = {
      dim: t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  return { tensorType };
}

function valueInfoFromProto(v: Proto): ValueInfo {
  const vi: ValueInfo = { name: v.name ?? '' };
  const type = typeFromProto(v.type);
  if (type) vi.type = type;
  if (v.docString) vi.docString = v.docString;
  return vi;
}

function valueInfoToProto(v: ValueInfo): Proto {
  const p: Proto = { name: v.name };
  const type = typeToProto(v.type);
  if (type) p.type = type;
  if (v.docString) p.docString = v.docString;
  return p;
}

function attrFromProto(a: Proto, readExternal?: ExternalReader): Attr {
  let type = toNum(a.type);
  if (a.refAttrName) return { type: 'opaque', value: a };
  if (type === AttrType.UNDEFINED) {
    // Very old writers leave `type` unset: infer it from the populated field.
    if (a.floats?.length) type = AttrType.FLOATS;
    else if (a.ints?.length) type = AttrType.INTS;
    else if (a.strings?.length) type = AttrType.STRINGS;
    else if (a.t) type = AttrType.TENSOR;
    else if (a.g) type = AttrType.GRAPH;
    else if (a.s?.length) type = AttrType.STRING;
    else if (a.f !== undefined && a.f !== 0) type = AttrType.FLOAT;
    else type = AttrType.INT;
  }
  switch (type) {
    case AttrType.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case AttrType.INT:
      return { type: 'int', value: toNum(a.i) };
    case AttrType.STRING:
      return { type: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case AttrType.TENSOR:
      return { type: 'tensor', value: tensorFromProto(a.t, readExternal) };
    case AttrType.GRAPH:
      return { type: 'graph', value: graphFromProto(a.g, readExternal) };
    case AttrType.FLOATS:
      return { type: 'floats', value: [...(a.floats ?? [])] };
    case AttrType.INTS:
      return { type: 'ints', value: (a.ints ?? []).map(toNum) };
    case AttrType.STRINGS:
      return { type: 'strings', value: (a.strings ?? []).map((s: Uint8Array) => utf8.decode(s)) };
    case AttrType.TENSORS:
      return { type: 'tensors', value: (a.tensors ?? []).map((t: Proto) => tensorFromProto(t, readExternal)) };
    case AttrType.GRAPHS:
      return { type: 'graphs', value: (a.graphs ?? []).map((g: Proto) => graphFromProto(g, readExternal)) };
    default:
      return { type: 'opaque', value: a };
  }
}

function attrToProto(name: string, a: Attr): Proto {
  switch (a.type) {
    case 'float':
      return { name, type: AttrType.FLOAT, f: a.value };
    case 'int':
      return { name, type: AttrType.INT, i: a.value };
    case 'string':
      return { name, type: AttrType.STRING, s: utf8e.encode(a.value) };
    case 'tensor':
      return { name, type: AttrType.TENSOR, t: tensorToProto(a.value) };
    case 'graph':
      return { name, type: AttrType.GRAPH, g: graphToProto(a.value) };
    case 'floats':
      return { name, type: AttrType.FLOATS, floats: a.value };
    case 'ints':
      return { name, type: AttrType.INTS, ints: a.value };
    case 'strings':
      return { name, type: AttrType.STRINGS, strings: a.value.map((s) => utf8e.encode(s)) };
    case 'tensors':
      return { name, type: AttrType.TENSORS, tensors: a.value.map(tensorToProto) };
    case 'graphs':
      return { name, type: AttrType.GRAPHS, graphs: a.value.map((g) => graphToProto(g)) };
    case 'opaque':
      return a.value;
  }
}

function nodeFromProto(n: Proto, readExternal?: ExternalReader): Node {
  const attrs: Record<string, Attr> = {};
  for (const a of n.attribute ?? []) attrs[a.name] = attrFromProto(a, readExternal);
  const node: Node = {
    name: n.name ?? '',
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs,
  };
  if (n.docString) node.docString = n.docString;
  const extra: Record<string, unknown> = {};
  if (n.overload) extra.overload = n.overload;
  if (n.metadataProps?.length) extra.metadataProps = n.metadataProps;
  if (Object.keys(extra).length) node.extra = extra;
  return node;
}

function nodeToProto(n: Node): Proto {
  const p: Proto = {
    name: n.name,
    opType: n.opType,
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([k, a]) => attrToProto(k, a)),
    ...(n.extra ?? {}),
  };
  if (n.domain) p.domain = n.domain;
  if (n.docString) p.docString = n.docString;
  return p;
}

export function graphFromProto(g: Proto, readExternal?: ExternalReader): Graph {
  const graph = new Graph();
  graph.name = g.name ?? '';
  graph.docString = g.docString ?? '';
  graph.nodes = (g.node ?? []).map((n: Proto) => nodeFromProto(n, readExternal));
  for (const t of g.initializer ?? []) {
    const td = tensorFromProto(t, readExternal);
    graph.initializers.set(td.name, td);
  }
  graph.inputs = (g.input ?? []).map(valueInfoFromProto);
  graph.outputs = (g.output ?? []).map(valueInfoFromProto);
  for (const v of g.valueInfo ?? []) {
    const vi = valueInfoFromProto(v);
    graph.valueInfo.set(vi.name, vi);
  }
  for (const k of ['sparseInitializer', 'quantizationAnnotation', 'metadataProps'])
    if (g[k]?.length) graph.extra[k] = g[k];
  return graph;
}

export interface TensorSink {
  /** Returns a TensorProto for an initializer, possibly pointing to external data. */
  (t: TensorData): Proto;
}

export function graphToProto(g: Graph, sink: TensorSink = tensorToProto): Proto {
  return {
    name: g.name,
    docString: g.docString || undefined,
    node: g.nodes.map(nodeToProto),
    initializer: [...g.initializers.values()].map(sink),
    input: g.inputs.map(valueInfoToProto),
    output: g.outputs.map(valueInfoToProto),
    valueInfo: [...g.valueInfo.values()].map(valueInfoToProto),
    ...g.extra,
  };
}

export function modelFromProto(m: Proto, readExternal?: ExternalReader): Model {
  if (!m.graph) throw new Error('the file holds no graph (is it an ONNX model?)');
  return {
    irVersion: toNum(m.irVersion),
    opsetImports: (m.opsetImport ?? []).map((o: Proto) => ({ domain: o.domain ?? '', version: toNum(o.version) })),
    producerName: m.producerName ?? '',
    producerVersion: m.producerVersion ?? '',
    domain: m.domain ?? '',
    modelVersion: toNum(m.modelVersion),
    docString: m.docString ?? '',
    metadata: (m.metadataProps ?? []).map((e: Proto) => ({ key: e.key, value: e.value })),
    graph: graphFromProto(m.graph, readExternal),
    functions: m.functions ?? [],
    trainingInfo: m.trainingInfo ?? [],
  };
}

export function modelToProto(model: Model, sink?: TensorSink): Proto {
  const p: Proto = {
    irVersion: model.irVersion,
    opsetImport: model.opsetImports,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain || undefined,
    modelVersion: model.modelVersion || undefined,
    docString: model.docString || undefined,
    graph: graphToProto(model.graph, sink),
    metadataProps: model.metadata,
  };
  if (model.functions.length) p.functions = model.functions;
  if (model.trainingInfo.length) p.trainingInfo = model.trainingInfo;
  return p;
}
