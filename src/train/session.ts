/** onnxruntime session options shared by every graph the tool runs (device, threads, memory). */
import ort from 'onnxruntime-node';
import type { Model } from '../ir/graph.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel } from '../onnx/io.js';
import { DataType } from '../onnx/schema.js';
import {
  checkProviderInstalled,
  executionProviders,
  explainProviderError,
  parseDevice,
  placementFromProfile,
  summarisePlacement,
  type PlacementSummary,
} from '../runtime/providers.js';

export interface RuntimeOptions {
  /** 'cpu' (default), 'cuda', 'cuda:<id>' or 'webgpu' (see runtime/providers.ts). */
  device?: string;
  /** Intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
  /**
   * onnxruntime's CPU arena keeps each session at its peak size, so with one session per block a
   * process would hold the sum of every block's peak. Off by default (measured on ResNet18 224
   * b32: 1.9 GB instead of 5.5 GB for SFF, no slower with the launcher's glibc settings).
   */
  memArena?: boolean;
}

export { DeviceError, parseDevice } from '../runtime/providers.js';

export function sessionOptions(opts: RuntimeOptions = {}): ort.InferenceSession.SessionOptions {
  const dev = parseDevice(opts.device);
  checkProviderInstalled(dev);
  return {
    executionProviders: executionProviders(dev),
    graphOptimizationLevel: 'all',
    ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
    enableCpuMemArena: opts.memArena ?? false,
    enableMemPattern: true,
  };
}

export async function createSession(model: Model | Uint8Array, opts: RuntimeOptions = {}, extra: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
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
export async function createPlacedSession(model: Model, opts: RuntimeOptions = {}, bytes: Uint8Array = encodeModel(model)): Promise<{ session: ort.InferenceSession; placement?: PlacementSummary }> {
  const dev = parseDevice(opts.device);
  if (dev.kind === 'cpu') return { session: await createSession(bytes, opts) };
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
function zeroFeeds(model: Model): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of model.graph.inputs) {
    if (model.graph.initializers.has(i.name) || i.type?.kind !== 'tensor') continue;
    const dims = (i.type.shape ?? []).map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
    const n = dims.reduce((a, d) => a * d, 1);
    if (i.type.elemType === DataType.INT64) feeds[i.name] = new ort.Tensor('int64', new BigInt64Array(n), dims);
    else if (i.type.elemType === DataType.FLOAT) feeds[i.name] = new ort.Tensor('float32', new Float32Array(n), dims);
    else throw new Error(`placement probe: input '${i.name}' of '${model.graph.name}' has element type ${i.type.elemType}, which it cannot feed`);
  }
  return feeds;
}
