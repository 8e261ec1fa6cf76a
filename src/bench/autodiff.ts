/**
 * Benchmark of the generated backward graphs: forward+backward vs forward-only
 * for ResNet18 layer1/layer3 BasicBlocks and a MobileNetV3-small block at
 * batch 32 (224×224-derived sizes), on onnxruntime CPU with 2 intra-op threads.
 * Also times the depthwise-conv gradient pieces separately and compares the
 * depthwise weight-gradient formulations (GradFormulations.depthwiseWeight, built side by side).
 *
 * Standalone: `npx tsc -p tsconfig.json && node dist/bench/autodiff.js` prints JSON.
 * Env: SFF_BENCH_REPS (timed runs, default 5), SFF_BENCH_BATCH (default 32),
 * SFF_BENCH_ONLY=depthwise (only the depthwise-gradient pieces), SFF_BENCH_ONLY=aux (only the aux
 * heads' conv: forward, dX and every weight-gradient formulation at the throughput networks' shapes),
 * SFF_BENCH_ONLY=maxpool (MaxPool forward + input gradient per formulation at CNNB's shapes).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Graph, makeModel, type Node } from '../ir/graph.js';
import { GraphBuilder } from '../ir/builder.js';
import { f } from '../ir/attrs.js';
import { floatTensor, numElements } from '../ir/tensor.js';
import { encodeModel } from '../onnx/io.js';
import { probeShapes } from '../runtime/probe.js';
import { createSession as createRuntimeSession, runtimeVersion, type Session } from '../runtime/session.js';
import { float32Tensor, type Tensor } from '../runtime/tensors.js';
import { median } from '../util/stats.js';
import { buildGradients } from '../autodiff/buildGradients.js';
import { Conv, DEPTHWISE_WEIGHT_FORMS } from '../autodiff/gradients/Conv.js';
import { MaxPool } from '../autodiff/gradients/MaxPool.js';
import { DEFAULT_FORMULATIONS, type ConvWeightForm, type DepthwiseWeightForm, type MaxPoolInputForm, type StridedInputForm } from '../autodiff/types.js';

const THREADS = 2;

let seed = 12345;
function randn(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const u = (seed + 1) / 4294967297;
    seed = (seed * 1103515245 + 12345) >>> 0;
    const v = (seed + 1) / 4294967297;
    a[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return a;
}

class Net {
  readonly g = new Graph();
  readonly b = new GraphBuilder(this.g);
  weight(base: string, dims: number[], scale: number): string {
    return this.b.initializer(floatTensor(this.b.unique(base), dims, randn(numElements(dims), scale)));
  }
  conv(x: string, cin: number, cout: number, k: number, s: number, group = 1, bias = false): string {
    const w = this.weight('conv.weight', [cout, cin / group, k, k], Math.sqrt(2 / ((cin / group) * k * k)));
    const ins = [x, w];
    if (bias) ins.push(this.weight('conv.bias', [cout], 0.1));
    const p = Math.floor(k / 2);
    const name = group > 1 && group === cin ? 'DepthwiseConv' : k === 1 ? 'Conv1x1' : `Conv${k}x${k}`;
    return this.b.op('Conv', ins, { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p], group }, name);
  }
  bn(x: string, c: number): string {
    const scale = this.b.initializer(floatTensor(this.b.unique('bn.weight'), [c], new Float32Array(c).fill(1)));
    const bias = this.b.initializer(floatTensor(this.b.unique('bn.bias'), [c], new Float32Array(c)));
    const rm = this.b.initializer(floatTensor(this.b.unique('bn.running_mean'), [c], new Float32Array(c)));
    const rv = this.b.initializer(floatTensor(this.b.unique('bn.running_var'), [c], new Float32Array(c).fill(1)));
    return this.b.node('BatchNormalization', [x, scale, bias, rm, rv], { epsilon: f(1e-5), momentum: f(0.9), training_mode: 1 }, { outputs: 3 })[0]!;
  }
  relu(x: string): string {
    return this.b.op('Relu', [x]);
  }
  hswish(x: string): string {
    return this.b.op('HardSwish', [x]);
  }
}

function basicBlock(n: Net, x: string, cin: number, cout: number, stride: number): string {
  let y = n.relu(n.bn(n.conv(x, cin, cout, 3, stride), cout));
  y = n.bn(n.conv(y, cout, cout, 3, 1), cout);
  const idt = stride !== 1 || cin !== cout ? n.bn(n.conv(x, cin, cout, 1, stride), cout) : x;
  return n.relu(n.b.op('Add', [y, idt]));
}

/** MobileNetV3 inverted residual with SE (hard-sigmoid gate) and hard-swish. */
function invertedResidual(n: Net, x: string, cin: number, exp: number, cout: number, k: number, s: number, sq: number): string {
  let y = n.hswish(n.bn(n.conv(x, cin, exp, 1, 1), exp));
  y = n.hswish(n.bn(n.conv(y, exp, exp, k, s, exp), exp));
  const pooled = n.b.op('GlobalAveragePool', [y]);
  const gate = n.b.op('HardSigmoid', [n.conv(n.relu(n.conv(pooled, exp, sq, 1, 1, 1, true)), sq, exp, 1, 1, 1, true)], { alpha: f(1 / 6), beta: f(0.5) });
  y = n.b.op('Mul', [y, gate]);
  y = n.bn(n.conv(y, exp, cout, 1, 1), cout);
  return s === 1 && cin === cout ? n.b.op('Add', [x, y]) : y;
}

interface Case {
  name: string;
  input: number[];
  build: (n: Net, x: string) => string;
}

async function createSession(bytes: Uint8Array): Promise<Session> {
  return createRuntimeSession(bytes, { threads: THREADS, memArena: true });
}

/**
 * Times several models on the same feeds, interleaving their runs (so load
 * from other processes hits all alike): warm-up runs, then the median of `reps`.
 */
async function timeInterleaved(models: Uint8Array[], feeds: Record<string, Tensor>, reps: number, warmup = 2): Promise<number[]> {
  const sessions: Session[] = [];
  try {
    for (const m of models) sessions.push(await createSession(m));
    for (let i = 0; i < warmup; i++) for (const s of sessions) await s.run(feeds);
    const t: number[][] = sessions.map(() => []);
    for (let i = 0; i < reps; i++)
      for (let k = 0; k < sessions.length; k++) {
        const t0 = performance.now();
        await sessions[k]!.run(feeds);
        t[k]!.push(performance.now() - t0);
      }
    return t.map(median);
  } finally {
    for (const s of sessions) await s.release();
  }
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/** The case's forward-only model, and the same graph with loss = mean(y²) and every gradient as outputs. */
async function buildFwdBwd(c: Case): Promise<{ n: Net; fwdModel: Uint8Array; model: ReturnType<typeof makeModel> }> {
  const n = new Net();
  n.g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: c.input } });
  const y = c.build(n, 'x');
  n.g.outputs = [{ name: y }];
  const fwdModel = encodeModel(makeModel(n.g));
  const lb = new GraphBuilder(n.g, '/loss');
  const loss = lb.op('ReduceMean', [lb.op('Mul', [y, y])], { keepdims: 0 });
  const model = makeModel(n.g);
  const shapes = await probeShapes(model, { inputDims: { x: c.input } });
  const wrt = [...n.g.initializers.keys()].filter((k) => !/running_(mean|var)/.test(k));
  const grads = buildGradients({ graph: n.g, loss, wrt, shapes, opset: 17 });
  n.g.outputs = [{ name: loss }, ...[...grads.values()].map((name) => ({ name }))];
  return { n, fwdModel, model };
}

/** Forward-only vs forward+backward (loss = mean of squares of the block output). */
async function benchBlock(c: Case, reps: number): Promise<Record<string, unknown>> {
  const { n, fwdModel, model } = await buildFwdBwd(c);
  const feeds = { x: float32Tensor(randn(numElements(c.input), 1), c.input) };
  const [fwd, both] = (await timeInterleaved([fwdModel, encodeModel(model)], feeds, reps)) as [number, number];
  return { input: c.input, fwd_ms: r2(fwd), fwd_bwd_ms: r2(both), ratio: r2(both / fwd), backward_nodes: n.g.nodes.length };
}

/**
 * Where the time of a fwd+bwd graph goes: onnxruntime node profiling, median
 * kernel time per node over the runs, grouped by the forward node a backward
 * op belongs to (backward ops are named '/grad/<forward node>/<op>') and by op type.
 */
async function profileBlock(c: Case, runs = 5): Promise<Record<string, unknown>> {
  const { model } = await buildFwdBwd(c);
  const dir = mkdtempSync(join(tmpdir(), 'sff-prof-'));
  const s = await createRuntimeSession(model, { threads: THREADS, memArena: true, profilePrefix: join(dir, 'p') });
  const feeds = { x: float32Tensor(randn(numElements(c.input), 1), c.input) };
  for (let i = 0; i < runs; i++) await s.run(feeds);
  s.endProfiling();
  await s.release();
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  const events = file ? (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[]) : [];
  rmSync(dir, { recursive: true, force: true });
  const perNode = new Map<string, { op: string; t: number[] }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    let rec = perNode.get(name);
    if (!rec) perNode.set(name, (rec = { op: e.args?.op_name ?? '?', t: [] }));
    rec.t.push(e.dur / 1000);
  }
  const byGroup: Record<string, number> = {};
  const byOp: Record<string, number> = {};
  let total = 0;
  for (const [name, rec] of perNode) {
    const ms = median(rec.t);
    total += ms;
    const m = /^\/grad\/([^/]+)\//.exec(name);
    const group = m ? `backward of ${m[1]!.replace(/_\d+$/, '')}` : name.startsWith('/loss') || name.startsWith('/grad') ? 'loss' : `forward ${name.replace(/(_\d+)?(_out.*|_token.*)?$/, '')}`;
    byGroup[group] = (byGroup[group] ?? 0) + ms;
    byOp[rec.op] = (byOp[rec.op] ?? 0) + ms;
  }
  const sorted = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, r2(v)]));
  return { kernel_ms_total: r2(total), by_forward_node: sorted(byGroup), by_op: sorted(byOp) };
}

/**
 * The depthwise Conv alone: forward, dX, and dW for every formulation, with
 * dY fed as an input (times the rule's ops only).
 */
async function benchDepthwise(N: number, C: number, H: number, k: number, s: number, reps: number): Promise<Record<string, unknown>> {
  const p = Math.floor(k / 2);
  const OH = Math.floor((H + 2 * p - k) / s) + 1;
  const xDims = [N, C, H, H];
  const yDims = [N, C, OH, OH];
  const wData = randn(C * k * k, 0.2);
  const feeds: Record<string, Tensor> = { x: float32Tensor(randn(numElements(xDims), 1), xDims), dy: float32Tensor(randn(numElements(yDims), 1), yDims) };
  const make = (which: 'fwd' | 'dx' | 'dw', mode?: DepthwiseWeightForm, dxMode?: StridedInputForm) => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: xDims } }, { name: 'dy', type: { kind: 'tensor', elemType: 1, shape: yDims } });
    g.initializers.set('w', floatTensor('w', [C, 1, k, k], wData));
    const node: Node = { name: 'dw', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: {} };
    const b = new GraphBuilder(g);
    b.node('Conv', ['x', 'w'], { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p], group: C }, { outputs: ['y'], name: 'dw' });
    Object.assign(node, g.nodes[0]);
    if (which === 'fwd') {
      g.outputs = [{ name: 'y' }];
      return { g, feeds };
    }
    g.nodes = [];
    const shapes: Record<string, number[]> = { x: xDims, w: [C, 1, k, k], y: yDims, dy: yDims };
    const out = Conv({
      b, node, opset: 17,
      formulations: { ...DEFAULT_FORMULATIONS, ...(mode ? { depthwiseWeight: mode } : {}), ...(dxMode ? { stridedConvInput: dxMode } : {}) },
      gradOutput: (i) => (i === 0 ? 'dy' : undefined), needsGrad: (i) => (which === 'dx' ? i === 0 : i === 1),
      shape: (v) => shapes[v]!, elemType: () => 1, constant: () => undefined, target: 'cpu',
    });
    g.outputs = [{ name: (which === 'dx' ? out[0] : out[1])! }];
    return { g, feeds };
  };
  const res: Record<string, unknown> = { shape: `N${N} C${C} ${H}x${H} k${k} s${s}` };
  const modes = DEPTHWISE_WEIGHT_FORMS;
  const built = [make('fwd'), make('dx'), ...modes.map((m) => make('dw', m))];
  if (s > 1) built.push(make('dx', undefined, 'convtranspose'), make('dx', undefined, 'zero-insert'));
  const times = await timeInterleaved(built.map((m) => encodeModel(makeModel(m.g))), feeds, reps);
  res.fwd_ms = r2(times[0]!);
  res.dx_ms = r2(times[1]!);
  if (s > 1) res.dx_alternatives_ms = { convtranspose: r2(times[modes.length + 2]!), 'zero-insert': r2(times[modes.length + 3]!) };
  const dw: Record<string, number> = {};
  modes.forEach((m, i) => (dw[m] = r2(times[i + 2]!)));
  res.dw_ms = dw;
  return res;
}

/**
 * The aux head's conv (k×k, stride 1, 'same' pads, J outputs) alone: forward, dX, and dW
 * in every ordinary-conv weight formulation (GradFormulations.convWeight), dY fed as an
 * input so only the rule's ops are timed, all sessions interleaved.
 */
async function benchAuxHead(label: string, x: number[], J: number, k: number, reps: number): Promise<Record<string, unknown>> {
  const [N, C, H, W] = x as [number, number, number, number];
  const p = Math.floor(k / 2);
  const yDims = [N, J, H, W];
  const feeds: Record<string, Tensor> = { x: float32Tensor(randn(numElements(x), 1), x), dy: float32Tensor(randn(numElements(yDims), 1), yDims) };
  const wData = randn(J * C * k * k, 0.05);
  const make = (which: 'fwd' | 'dx' | 'dw', convWeight?: ConvWeightForm) => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: x } }, { name: 'dy', type: { kind: 'tensor', elemType: 1, shape: yDims } });
    g.initializers.set('w', floatTensor('w', [J, C, k, k], wData));
    const b = new GraphBuilder(g);
    b.node('Conv', ['x', 'w'], { kernel_shape: [k, k], pads: [p, p, k - 1 - p, k - 1 - p] }, { outputs: ['y'], name: 'aux' });
    const node = { ...g.nodes[0]! };
    if (which === 'fwd') {
      g.outputs = [{ name: 'y' }];
      return encodeModel(makeModel(g));
    }
    g.nodes = [];
    const shapes: Record<string, number[]> = { x, w: [J, C, k, k], y: yDims, dy: yDims };
    const out = Conv({
      b, node, opset: 17,
      formulations: { ...DEFAULT_FORMULATIONS, ...(convWeight ? { convWeight } : {}) },
      gradOutput: (i) => (i === 0 ? 'dy' : undefined), needsGrad: (i) => (which === 'dx' ? i === 0 : i === 1),
      shape: (v) => shapes[v]!, elemType: () => 1, constant: () => undefined, target: 'cpu',
    });
    g.outputs = [{ name: (which === 'dx' ? out[0] : out[1])! }];
    return encodeModel(makeModel(g));
  };
  const forms: ConvWeightForm[] = ['auto', 'per-tap', 'concat', 'batched', 'conv', 'conv-dy'];
  const times = await timeInterleaved([make('fwd'), make('dx'), ...forms.map((m) => make('dw', m))], feeds, reps);
  return { shape: `${label}: N${N} C${C} ${H}x${W} → ${J}, k${k}`, fwd_ms: r2(times[0]!), dx_ms: r2(times[1]!), dw_ms: Object.fromEntries(forms.map((m, i) => [m, r2(times[i + 2]!)])) };
}

/** Aux-head shapes of the three throughput networks (block outputs at their bench batch sizes). */
export async function benchAuxHeads(reps: number): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const cases: [string, number[]][] = [
    ['resnet18 layer1', [32, 64, 56, 56]],
    ['resnet18 layer2', [32, 128, 28, 28]],
    ['mobilenetv3-small features.0', [32, 16, 112, 112]],
    ['mobilenetv3-small features.1', [32, 16, 56, 56]],
    ['cnnb block0', [128, 32, 16, 16]],
    ['cnnb block2', [128, 128, 8, 8]],
  ];
  for (const [label, x] of cases) {
    out.push(await benchAuxHead(label, x, 10, 5, reps));
    if (process.env.SFF_BENCH_VERBOSE) console.error(JSON.stringify(out.at(-1)));
  }
  return out;
}

/**
 * MaxPool forward + input gradient for each formulation (GradFormulations.maxPoolInput), dY fed
 * as an input, interleaved: the forward node plus what the rule appends.
 */
async function benchMaxPool(label: string, x: number[], k: number, s: number, pad: number, reps: number): Promise<Record<string, unknown>> {
  const [N, C, H, W] = x as [number, number, number, number];
  const out = (v: number) => Math.floor((v + 2 * pad - k) / s) + 1;
  const yDims = [N, C, out(H), out(W)];
  const feeds: Record<string, Tensor> = { x: float32Tensor(randn(numElements(x), 1), x), dy: float32Tensor(randn(numElements(yDims), 1), yDims) };
  const attrs = { kernel_shape: [k, k], strides: [s, s], ...(pad ? { pads: [pad, pad, pad, pad] } : {}) };
  const make = (maxPoolInput: MaxPoolInputForm) => {
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: 1, shape: x } }, { name: 'dy', type: { kind: 'tensor', elemType: 1, shape: yDims } });
    const b = new GraphBuilder(g);
    b.node('MaxPool', ['x'], attrs, { outputs: ['y'], name: 'pool' });
    const node = { ...g.nodes[0]! };
    const shapes: Record<string, number[]> = { x, y: yDims, dy: yDims };
    const r = MaxPool({
      b, node, opset: 17, formulations: { ...DEFAULT_FORMULATIONS, maxPoolInput },
      gradOutput: (i) => (i === 0 ? 'dy' : undefined), needsGrad: (i) => i === 0,
      shape: (v) => shapes[v]!, elemType: () => 1, constant: () => undefined, target: 'cpu',
    });
    g.outputs = [{ name: 'y' }, { name: r[0]! }];
    return encodeModel(makeModel(g));
  };
  const forms: MaxPoolInputForm[] = pad === 0 && k === s ? ['scatter', 'mask'] : ['scatter'];
  const times = await timeInterleaved(forms.map(make), feeds, reps);
  return { shape: `${label}: N${N} C${C} ${H}x${W} k${k} s${s} pad ${pad}`, fwd_bwd_ms: Object.fromEntries(forms.map((m, i) => [m, r2(times[i]!)])) };
}

/** MaxPool shapes of the throughput networks: CNNB's two 2×2/2 pools at batch 128. */
export async function benchMaxPools(reps: number): Promise<Record<string, unknown>[]> {
  return [await benchMaxPool('cnnb block0.pool', [128, 32, 32, 32], 2, 2, 0, reps), await benchMaxPool('cnnb block1.pool', [128, 64, 16, 16], 2, 2, 0, reps)];
}

function benchCases(N: number): Case[] {
  return [
    { name: 'resnet18.layer1.0 (64ch@56x56)', input: [N, 64, 56, 56], build: (n, x) => basicBlock(n, x, 64, 64, 1) },
    { name: 'resnet18.layer3.0 (128->256, stride 2, 28x28 in)', input: [N, 128, 28, 28], build: (n, x) => basicBlock(n, x, 128, 256, 2) },
    { name: 'resnet18.layer3.1 (256ch@14x14)', input: [N, 256, 14, 14], build: (n, x) => basicBlock(n, x, 256, 256, 1) },
    { name: 'mobilenet_v3_small.features.5 (40->240 k5 s1 SE ->40 @14x14)', input: [N, 40, 14, 14], build: (n, x) => invertedResidual(n, x, 40, 240, 40, 5, 1, 64) },
    { name: 'mobilenet_v3_small.features.4 (24->96 k5 s2 SE ->40 @28x28 in)', input: [N, 24, 28, 28], build: (n, x) => invertedResidual(n, x, 24, 96, 40, 5, 2, 24) },
  ];
}

/** Internals for profiling scripts and tests. */
export const __test = { Net, cases: benchCases, basicBlock, invertedResidual };

export async function benchAutodiff(): Promise<Record<string, unknown>> {
  const reps = Number(process.env.SFF_BENCH_REPS ?? 5);
  const N = Number(process.env.SFF_BENCH_BATCH ?? 32);
  const result: Record<string, unknown> = { threads: THREADS, batch: N, reps, depthwise_mode: DEFAULT_FORMULATIONS.depthwiseWeight, ort: runtimeVersion() };
  const cases = benchCases(N);
  const blocks: Record<string, unknown> = {};
  const only = process.env.SFF_BENCH_ONLY; // 'depthwise' / 'aux' run only those pieces
  if (only === 'aux') return { ...result, aux_heads: await benchAuxHeads(reps) };
  if (only === 'maxpool') return { ...result, max_pools: await benchMaxPools(reps) };
  for (const c of only === 'depthwise' ? [] : cases) {
    blocks[c.name] = await benchBlock(c, reps);
    if (process.env.SFF_BENCH_VERBOSE) console.error(c.name, JSON.stringify(blocks[c.name]));
  }
  result.blocks = blocks;
  if (only !== 'depthwise') {
    result.profile_mbv3_features5 = await profileBlock(cases[3]!);
    result.profile_resnet_layer1 = await profileBlock(cases[0]!);
  }
  result.depthwise_pieces = [await benchDepthwise(N, 240, 14, 5, 1, reps), await benchDepthwise(N, 96, 28, 5, 2, reps)];
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchAutodiff()
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
