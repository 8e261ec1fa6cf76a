/**
 * onnxruntime sessions: one place that chooses the execution provider, threads, memory arena and
 * profiling for every graph the tool runs; which provider a device means, and its failures, are providers.ts's.
 */
import ort from 'onnxruntime-node';
import { Graph, makeModel, type Model } from '../ir/graph.js';
import { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/types.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel } from '../onnx/io.js';
import { zerosTensor, type Tensor } from './tensors.js';
import {
  DeviceError,
  checkProviderInstalled,
  executionProviders,
  explainProviderError,
  parseDevice,
  placementFromProfile,
  summarisePlacement,
  type PlacementSummary,
} from './providers.js';

export interface RuntimeOptions {
  /** 'cpu' (default), 'cuda', 'cuda:<id>' or 'webgpu' (see providers.ts). */
  device?: string;
  /** Intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
  /**
   * onnxruntime's CPU arena keeps each session at its peak size, so with one session per block a
   * process would hold the sum of every block's peak. Off by default (measured on ResNet18 224
   * b32: 1.9 GB instead of 5.5 GB for SFF, no slower with the launcher's glibc settings).
   */
  memArena?: boolean;
  /** Write an onnxruntime profile (JSON) per session, its file name starting with this path. */
  profilePrefix?: string;
}

/** A session of the runtime (graphs are run only through sessions made here). */
export type Session = ort.InferenceSession;

export { DeviceError, parseDevice } from './providers.js';

export function sessionOptions(opts: RuntimeOptions = {}): ort.InferenceSession.SessionOptions {
  const dev = parseDevice(opts.device);
  checkProviderInstalled(dev);
  return {
    executionProviders: executionProviders(dev),
    graphOptimizationLevel: 'all',
    ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
    enableCpuMemArena: opts.memArena ?? false,
    enableMemPattern: true,
    ...(opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profilePrefix } : {}),
  };
}

/**
 * Fails early, with the install command, when `device` cannot run a session here: onnxruntime may
 * list a GPU provider yet lack its libraries or an adapter, which it reports only when a session is made.
 */
export async function checkDevice(opts: RuntimeOptions = {}): Promise<void> {
  const dev = parseDevice(opts.device);
  if (dev.kind === 'cpu') return;
  const g = new Graph();
  g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [1] } });
  new GraphBuilder(g).node('Identity', ['x'], {}, { outputs: ['y'] });
  g.outputs.push({ name: 'y', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [1] } });
  const bytes = encodeModel(makeModel(g, 17));
  // onnxruntime's own log of a missing provider library is a raw multi-line dump: the error below
  // says it plainly. (The log level is process-wide and set once: GPU runs log fatal errors only.)
  ort.env.logLevel = 'fatal';
  try {
    const s = await ort.InferenceSession.create(bytes, { ...sessionOptions(opts), logSeverityLevel: 4 });
    await s.release();
  } catch (e) {
    const explained = explainProviderError(dev, e);
    if (explained instanceof DeviceError) throw explained;
    throw new DeviceError(
      `--device ${opts.device} cannot be used: onnxruntime could not start its ${dev.kind === 'cuda' ? 'CUDA' : 'WebGPU'} provider (${(e as Error).message.split('\n')[0]}). ` +
        (dev.kind === 'cuda' ? 'Reinstall onnxruntime-node with CUDA binaries: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm install` (needs CUDA 12 and cuDNN 9), or use --device cpu.' : 'Check the Vulkan driver, or use --device cpu.'),
    );
  }
}

export async function createSession(model: Model | Uint8Array, opts: RuntimeOptions = {}, extra: ort.InferenceSession.SessionOptions = {}): Promise<Session> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  try {
    return await ort.InferenceSession.create(bytes, { ...sessionOptions(opts), ...extra });
  } catch (e) {
    throw explainProviderError(parseDevice(opts.device), e);
  }
}

/**
 * A session and, on a GPU device, where its nodes ran: one run on zeros with onnxruntime's
 * profiler on (which names each node's EP), before any real step. CPU sessions are not probed.
 */
export async function createPlacedSession(model: Model, opts: RuntimeOptions = {}, bytes: Uint8Array = encodeModel(model)): Promise<{ session: Session; placement?: PlacementSummary }> {
  const dev = parseDevice(opts.device);
  // A session already profiled for a benchmark keeps its own profile: no placement probe then.
  if (dev.kind === 'cpu' || opts.profilePrefix) return { session: await createSession(bytes, opts) };
  const dir = mkdtempSync(join(tmpdir(), 'sff-placement-'));
  try {
    const session = await createSession(bytes, opts, { enableProfiling: true, profileFilePrefix: join(dir, 'run') });
    try {
      await session.run(zeroFeeds(model));
    } catch (e) {
      await session.release();
      throw explainProviderError(dev, e);
    }
    session.endProfiling();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`onnxruntime wrote no profile in ${dir}: cannot tell where the nodes of '${model.graph.name}' ran`);
    return { session, placement: summarisePlacement(dev, placementFromProfile(join(dir, file))) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Zeros for every graph input (symbolic dims as 1). */
function zeroFeeds(model: Model): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const i of model.graph.inputs) {
    if (model.graph.initializers.has(i.name) || i.type?.kind !== 'tensor') continue;
    feeds[i.name] = zerosTensor(i.type.elemType, (i.type.shape ?? []).map((d) => (typeof d === 'number' && d >= 0 ? d : 1)));
  }
  return feeds;
}

/**
 * A session for a one-off run while importing (shape probe, constant folding): no graph
 * optimisation, so every value the graph names is computed as written; onnxruntime's defaults otherwise.
 */
export async function createProbeSession(model: Model): Promise<Session> {
  return ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'disabled' });
}

/** The onnxruntime version in use (recorded by the benchmarks). */
export function runtimeVersion(): string | undefined {
  return ort.env.versions?.common;
}
