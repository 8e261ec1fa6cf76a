/**
 * Finite-difference checking of gradient rules, and running IR graphs in
 * onnxruntime. Shared by every gradient test.
 */
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/ir/builder.js';
import { Graph, makeModel } from '../../src/ir/graph.js';
import type { ValueShape } from '../../src/ir/shapes.js';
import { floatTensor, int64Tensor } from '../../src/ir/tensor.js';
import { encodeModel } from '../../src/onnx/io.js';
import { DataType } from '../../src/ir/types.js';
import { buildGradients } from '../../src/autodiff/buildGradients.js';
import type { GradRule } from '../../src/autodiff/types.js';

export type Feed = ort.Tensor | { dims: number[]; data: Float32Array | BigInt64Array };

function toOrt(f: Feed): ort.Tensor {
  if (f instanceof ort.Tensor) return f;
  return f.data instanceof BigInt64Array ? new ort.Tensor('int64', f.data, f.dims) : new ort.Tensor('float32', f.data, f.dims);
}

/**
 * Runs an IR graph once in onnxruntime. `outputs` overrides the graph's outputs
 * (any intermediate value can be fetched). Graph inputs need typed ValueInfos.
 */
export async function runGraph(
  graph: Graph,
  feeds: Record<string, Feed>,
  opset = 17,
  outputs?: string[],
): Promise<Record<string, ort.Tensor>> {
  const g = new Graph();
  Object.assign(g, graph);
  if (outputs) g.outputs = outputs.map((name) => ({ name }));
  const session = await ort.InferenceSession.create(encodeModel(makeModel(g, opset)), { logSeverityLevel: 3 });
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
    return await session.run(ortFeeds);
  } finally {
    await session.release();
  }
}

const ORT_ELEM: Record<string, number> = { float32: DataType.FLOAT, float64: DataType.DOUBLE, int64: DataType.INT64, int32: DataType.INT32, bool: DataType.BOOL, uint8: DataType.UINT8 };

/**
 * Shapes and element types of every value, by one run with the given feeds
 * (unlike `probeShapes`, which feeds zeros, so value-dependent shapes are exact here).
 */
export async function probeShapesWith(graph: Graph, feeds: Record<string, Feed>, opset = 17): Promise<Map<string, ValueShape>> {
  const names = new Set<string>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) names.add(o);
  const out = await runGraph(graph, feeds, opset, [...names]);
  const shapes = new Map<string, ValueShape>();
  for (const i of graph.inputs)
    if (i.type?.kind === 'tensor') shapes.set(i.name, { dims: (i.type.shape ?? []).map(Number), elemType: i.type.elemType });
  for (const [k, t] of graph.initializers) shapes.set(k, { dims: [...t.dims], elemType: t.dataType });
  for (const [k, v] of Object.entries(out)) shapes.set(k, { dims: [...v.dims], elemType: ORT_ELEM[v.type] ?? DataType.UNDEFINED });
  return shapes;
}

/** Deterministic uniform numbers in [lo, hi) (mulberry32). */
export function randomFloats(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

export interface CheckInput {
  dims: number[];
  /** Values; float inputs default to uniform [-1, 1) from the seed. Required for int64. */
  data?: Float32Array | BigInt64Array;
  /** Differentiated (an initializer listed in `wrt`). */
  trainable?: boolean;
  dtype?: 'float32' | 'int64';
  /** Non-trainable inputs are constant initializers unless fed as graph inputs. */
  feed?: boolean;
}

export interface CheckOptions {
  /** Builds the forward ops from the input names (equal to the keys of `inputs`); returns the output value. */
  build: (b: GraphBuilder, inputs: Record<string, string>) => string;
  inputs: Record<string, CheckInput>;
  opset?: number;
  /** Central-difference step (default 1e-3). */
  eps?: number;
  /** Elementwise tolerance |analytic - numeric| <= atol + rtol*|numeric| (defaults 1e-2, 1e-3). */
  rtol?: number;
  atol?: number;
  seed?: number;
  /** Rules to use instead of the project's registry (e.g. a rule under development). */
  rules?: Record<string, GradRule>;
}

export interface CheckResult {
  maxAbsErr: number;
  /** max |analytic - numeric| / max(|numeric|, atol). */
  maxRelErr: number;
  analytic: Record<string, Float32Array>;
  numeric: Record<string, Float32Array>;
  /** Gradient value names, and the graph with forward, loss and backward ops (for inspection). */
  gradNames: Map<string, string>;
  graph: Graph;
}

function numel(dims: number[]): number {
  return dims.reduce((a, d) => a * d, 1);
}

function inputData(name: string, spec: CheckInput, seed: number): Float32Array | BigInt64Array {
  if (spec.data) {
    if (spec.data.length !== numel(spec.dims)) throw new Error(`input '${name}': ${spec.data.length} values for dims [${spec.dims}]`);
    return spec.data;
  }
  if (spec.dtype === 'int64') throw new Error(`input '${name}': int64 inputs need data`);
  return randomFloats(numel(spec.dims), seed);
}

/**
 * Builds `build`'s graph with loss = ReduceSum(y * R) for a fixed random R,
 * differentiates it with `buildGradients`, runs the analytic gradients once,
 * and compares them elementwise with central differences (float64 loss
 * accumulation of float32 forward outputs). Throws a descriptive error when
 * some element is out of tolerance.
 */
export async function checkGradients(opts: CheckOptions): Promise<CheckResult> {
  const opset = opts.opset ?? 17;
  const eps = opts.eps ?? 1e-3;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-3;
  const seed = opts.seed ?? 1234;
  const names = Object.keys(opts.inputs);
  const data: Record<string, Float32Array | BigInt64Array> = {};
  names.forEach((n, i) => (data[n] = inputData(n, opts.inputs[n]!, seed * 31 + i + 1)));
  const trainables = names.filter((n) => opts.inputs[n]!.trainable);
  if (!trainables.length) throw new Error('checkGradients: no trainable input');
  for (const t of trainables) if (opts.inputs[t]!.dtype === 'int64') throw new Error(`checkGradients: trainable '${t}' must be float32`);

  const typeOf = (n: string) => (opts.inputs[n]!.dtype === 'int64' ? DataType.INT64 : DataType.FLOAT);
  const tensorOf = (n: string) => {
    const d = data[n]!;
    return d instanceof BigInt64Array ? int64Tensor(n, opts.inputs[n]!.dims, d) : floatTensor(n, opts.inputs[n]!.dims, d);
  };
  /** Forward graph; trainables are initializers (`asFeeds` false) or graph inputs. */
  const forward = (asFeeds: boolean): { graph: Graph; b: GraphBuilder; y: string } => {
    const graph = new Graph();
    graph.name = 'gradcheck';
    for (const n of names) {
      const spec = opts.inputs[n]!;
      const fed = spec.feed || (asFeeds && spec.trainable);
      if (fed) graph.inputs.push({ name: n, type: { kind: 'tensor', elemType: typeOf(n), shape: [...spec.dims] } });
      else graph.initializers.set(n, tensorOf(n));
    }
    const b = new GraphBuilder(graph);
    const inputs = Object.fromEntries(names.map((n) => [n, n]));
    const y = opts.build(b, inputs);
    graph.outputs = [{ name: y }];
    return { graph, b, y };
  };
  const feedsOf = (asFeeds: boolean, override?: Record<string, Float32Array>): Record<string, ort.Tensor> => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const n of names) {
      const spec = opts.inputs[n]!;
      if (!(spec.feed || (asFeeds && spec.trainable))) continue;
      feeds[n] = toOrt({ dims: spec.dims, data: override?.[n] ?? data[n]! });
    }
    return feeds;
  };

  // Analytic: forward + loss + backward, one run.
  const { graph, b, y } = forward(false);
  const yShapes = await probeShapesWith(graph, feedsOf(false), opset);
  const yDims = yShapes.get(y)?.dims;
  if (!yDims) throw new Error(`checkGradients: output '${y}' was not computed`);
  const R = randomFloats(numel(yDims), seed ^ 0x5bd1e995);
  const r = b.initializer(floatTensor('R', yDims, R));
  const prod = b.op('Mul', [y, r]);
  const loss = b.op('ReduceSum', [prod], { keepdims: 0 }, 'loss');
  graph.outputs = [{ name: loss }];
  const shapes = await probeShapesWith(graph, feedsOf(false), opset);
  const gradNames = buildGradients({ graph, loss, wrt: trainables, shapes, opset, prefix: '/grad', rules: opts.rules });
  const gradList = trainables.map((t) => gradNames.get(t)!);
  graph.outputs = [...new Set(gradList)].map((name) => ({ name }));
  const res = await runGraph(graph, feedsOf(false), opset);
  const analytic: Record<string, Float32Array> = {};
  for (const t of trainables) analytic[t] = Float32Array.from(res[gradNames.get(t)!]!.data as Float32Array);

  // Numeric: central differences of sum(y * R) in float64.
  const fwd = forward(true);
  const session = await ort.InferenceSession.create(encodeModel(makeModel(fwd.graph, opset)), { logSeverityLevel: 3 });
  const numeric: Record<string, Float32Array> = {};
  try {
    const lossAt = async (override: Record<string, Float32Array>): Promise<number> => {
      const out = await session.run(feedsOf(true, override));
      const yv = out[fwd.y]!.data as Float32Array;
      let s = 0;
      for (let i = 0; i < yv.length; i++) s += yv[i]! * R[i]!;
      return s;
    };
    for (const t of trainables) {
      const base = data[t] as Float32Array;
      const g = new Float32Array(base.length);
      const work = Float32Array.from(base);
      for (let i = 0; i < base.length; i++) {
        work[i] = base[i]! + eps;
        const hiX = work[i]!;
        const lp = await lossAt({ [t]: work });
        work[i] = base[i]! - eps;
        const loX = work[i]!;
        const lm = await lossAt({ [t]: work });
        work[i] = base[i]!;
        g[i] = (lp - lm) / (hiX - loX); // the float32 step actually taken
      }
      numeric[t] = g;
    }
  } finally {
    await session.release();
  }

  let maxAbsErr = 0;
  let maxRelErr = 0;
  const failures: string[] = [];
  for (const t of trainables) {
    const a = analytic[t]!;
    const n = numeric[t]!;
    if (a.length !== n.length) throw new Error(`gradient of '${t}' has ${a.length} elements, expected ${n.length}`);
    for (let i = 0; i < a.length; i++) {
      const err = Math.abs(a[i]! - n[i]!);
      const ok = err <= atol + rtol * Math.abs(n[i]!);
      if (!(err <= maxAbsErr)) maxAbsErr = Number.isNaN(err) ? Infinity : err;
      maxRelErr = Math.max(maxRelErr, Number.isNaN(err) ? Infinity : err / Math.max(Math.abs(n[i]!), atol));
      if (!ok) failures.push(`  ${t}[${i}]: analytic ${a[i]}, numeric ${n[i]}, |diff| ${err.toExponential(3)}`);
    }
  }
  if (failures.length) {
    throw new Error(
      `gradient check failed (eps ${eps}, rtol ${rtol}, atol ${atol}, opset ${opset}): ${failures.length} element(s) out of tolerance\n` +
        failures.slice(0, 12).join('\n') +
        (failures.length > 12 ? `\n  … ${failures.length - 12} more` : ''),
    );
  }
  return { maxAbsErr, maxRelErr, analytic, numeric, gradNames, graph };
}
