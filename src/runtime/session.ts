/**
 * onnxruntime sessions: one place that chooses the execution provider, threads, memory arena and
 * profiling for every graph the tool runs. Execution providers beyond cpu and cuda plug in here.
 */
import ort from 'onnxruntime-node';
import { Graph, makeModel, type Model } from '../ir/graph.js';
import { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/types.js';
import { encodeModel } from '../onnx/io.js';

export interface RuntimeOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:<id>'. */
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

export class DeviceError extends Error {
  override name = 'DeviceError';
}

export function parseDevice(device = 'cpu'): { kind: 'cpu' | 'cuda'; id: number } {
  const m = /^(cpu|cuda)(?::(\d+))?$/.exec(device);
  if (!m) throw new DeviceError(`--device '${device}' is not understood: use cpu, cuda or cuda:<id>`);
  return { kind: m[1] as 'cpu' | 'cuda', id: Number(m[2] ?? 0) };
}

export function sessionOptions(opts: RuntimeOptions = {}): ort.InferenceSession.SessionOptions {
  const dev = parseDevice(opts.device);
  if (dev.kind === 'cuda') {
    const backends = ort.listSupportedBackends?.() ?? [];
    if (!backends.some((b) => b.name === 'cuda'))
      throw new DeviceError(
        'the CUDA execution provider is not installed in this onnxruntime-node. Reinstall it with CUDA binaries: ' +
          '`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` (needs network access, CUDA 12 and cuDNN 9 on the machine), or use --device cpu.',
      );
  }
  return {
    executionProviders: dev.kind === 'cuda' ? [{ name: 'cuda', deviceId: dev.id }, 'cpu'] : ['cpu'],
    graphOptimizationLevel: 'all',
    ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
    enableCpuMemArena: opts.memArena ?? false,
    enableMemPattern: true,
    ...(opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profilePrefix } : {}),
  };
}

/**
 * Fails early, with the install command, when `device` cannot run a session here: onnxruntime may
 * list the CUDA provider yet lack its libraries, which it reports only when a session is made.
 */
export async function checkDevice(opts: RuntimeOptions = {}): Promise<void> {
  if (parseDevice(opts.device).kind === 'cpu') return;
  const g = new Graph();
  g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [1] } });
  new GraphBuilder(g).node('Identity', ['x'], {}, { outputs: ['y'] });
  g.outputs.push({ name: 'y', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [1] } });
  const bytes = encodeModel(makeModel(g, 17));
  // onnxruntime's own log of a missing provider library is a raw multi-line dump: the error below
  // says it plainly. (The log level is process-wide and set once: CUDA runs log fatal errors only.)
  ort.env.logLevel = 'fatal';
  try {
    const s = await ort.InferenceSession.create(bytes, { ...sessionOptions(opts), logSeverityLevel: 4 });
    await s.release();
  } catch (e) {
    if (e instanceof DeviceError) throw e;
    throw new DeviceError(
      `--device ${opts.device} cannot be used: onnxruntime could not start its CUDA provider (${(e as Error).message.split('\n')[0]}). ` +
        'Reinstall onnxruntime-node with CUDA binaries: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm install` (needs CUDA 12 and cuDNN 9), or use --device cpu.',
    );
  }
}

export async function createSession(model: Model | Uint8Array, opts: RuntimeOptions = {}): Promise<Session> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  return ort.InferenceSession.create(bytes, sessionOptions(opts));
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
