/**
 * Execution providers: which one `--device` names, its onnxruntime options, what graph
 * variant it needs, why it failed to start (in words a user can act on), and where each node
 * of a session actually ran (onnxruntime silently moves nodes a provider lacks to the CPU).
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import type { GraphTarget } from '../autodiff/lowering.js';

export class DeviceError extends Error {
  override name = 'DeviceError';
}

export type DeviceKind = 'cpu' | 'cuda' | 'webgpu';

export interface Device {
  kind: DeviceKind;
  /** GPU ordinal (CUDA only; 0 otherwise). */
  id: number;
}

export const DEVICE_HELP = 'cpu | cuda | cuda:<id> | webgpu';

export function parseDevice(device = 'cpu'): Device {
  const m = /^(cpu|cuda|webgpu)(?::(\d+))?$/.exec(device);
  if (!m || (m[1] !== 'cuda' && m[2] !== undefined))
    throw new DeviceError(`--device '${device}' is not understood: use ${DEVICE_HELP.replace(/ \| /g, ', ')}`);
  return { kind: m[1] as DeviceKind, id: Number(m[2] ?? 0) };
}

/** The graph variant a device runs (see autodiff/lowering.ts). */
export function graphTarget(device?: string): GraphTarget {
  return parseDevice(device).kind;
}

/** onnxruntime's EP names as its profile and logs spell them. */
export const PROVIDER_NAMES: Record<DeviceKind, string> = {
  cpu: 'CPUExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
};

/** The folder of onnxruntime-node's native binding, where provider libraries must sit. */
export function bindingDir(): string {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  // …/onnxruntime-node/dist/index.js → …/onnxruntime-node/bin/napi-v6/<platform>/<arch>
  return join(dirname(dirname(main)), 'bin', 'napi-v6', process.platform, process.arch);
}

/** The libraries onnxruntime loads for the CUDA EP, next to its binding. */
export const CUDA_PROVIDER_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

const CUDA_INSTALL_HINT =
  'Install onnxruntime-node with its CUDA provider: `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` ' +
  '(with npm 10: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm install`; network needed, CUDA 12 and cuDNN 9 on the machine); ' +
  'or use --device webgpu (bundled; needs a Vulkan driver), or use --device cpu.';

/**
 * Checks, before any session is made, that the device's provider can be loaded at all.
 * `dir` is onnxruntime-node's binding folder (a parameter so tests can point elsewhere).
 */
export function checkProviderInstalled(device: Device, dir = bindingDir()): void {
  if (device.kind === 'cpu') return;
  const name = device.kind;
  const backends = ort.listSupportedBackends?.() ?? [];
  if (!backends.some((b) => b.name === name))
    throw new DeviceError(`--device ${name} cannot be used: this onnxruntime-node build has no ${name} execution provider (it has: ${backends.map((b) => b.name).join(', ') || 'cpu'}). ${name === 'cuda' ? CUDA_INSTALL_HINT : 'Use --device cpu.'}`);
  if (device.kind === 'cuda') {
    const missing = CUDA_PROVIDER_LIBRARIES.filter((f) => !existsSync(join(dir, f)));
    if (missing.length)
      throw new DeviceError(`--device cuda cannot be used: onnxruntime's CUDA provider library is not installed (${missing.join(', ')} missing in ${dir}). ${CUDA_INSTALL_HINT}`);
  }
}

/** The executionProviders list of a session on this device; the CPU EP comes last, as onnxruntime's own fallback. */
export function executionProviders(device: Device): ort.InferenceSession.SessionOptions['executionProviders'] {
  switch (device.kind) {
    case 'cuda':
      return [{ name: 'cuda', deviceId: device.id }, 'cpu'];
    case 'webgpu':
      return ['webgpu', 'cpu'];
    default:
      return ['cpu'];
  }
}

/** Failure causes told apart by onnxruntime's (and the CUDA runtime's, and Dawn's) own messages. */
const FAILURES: { device: DeviceKind; pattern: RegExp; explain: string }[] = [
  {
    device: 'webgpu',
    pattern: /Failed to get a WebGPU adapter|No supported adapters/i,
    explain:
      'no GPU adapter: onnxruntime’s WebGPU EP (Dawn, over Vulkan) found no Vulkan driver. On a GPU machine install the vendor’s Vulkan driver and the loader (libvulkan1); ' +
      'to test on a CPU, install Debian’s chromium package and set VK_ICD_FILENAMES to its SwiftShader ICD (`dpkg -L chromium-common | grep swiftshader_icd`)',
  },
  {
    device: 'cuda',
    pattern: /lib(cudart|cublas|cublasLt|cudnn|cufft|curand)[^ ]*\.so[.0-9]*: cannot open/i,
    explain: "wrong or missing CUDA: a CUDA runtime library that onnxruntime's CUDA provider was built against is not on the library path (it needs CUDA 12 and cuDNN 9; set LD_LIBRARY_PATH to their lib folders)",
  },
  {
    device: 'cuda',
    pattern: /libonnxruntime_providers_(shared|cuda)\.so|Failed to load shared library/i,
    explain: `onnxruntime's CUDA provider library could not be loaded. ${CUDA_INSTALL_HINT}`,
    // (after the CUDA-runtime pattern: a provider library that loads but lacks libcudart names both)
  },
  {
    device: 'cuda',
    pattern: /CUDA driver version is insufficient|cudaErrorInsufficientDriver|CUDA failure 35\b/i,
    explain: "wrong CUDA: the NVIDIA driver is older than the CUDA runtime onnxruntime's provider uses; update the driver or install onnxruntime-node built for the machine's CUDA",
  },
  {
    device: 'cuda',
    pattern: /no CUDA-capable device|cudaErrorNoDevice|CUDA failure 100\b|invalid device ordinal|CUDA failure 101\b/i,
    explain: 'no GPU: the CUDA runtime found no usable NVIDIA GPU (or none with that id); check nvidia-smi, CUDA_VISIBLE_DEVICES and --device cuda:<id>',
  },
];

/** A DeviceError explaining a session failure on a GPU device; other errors pass through unchanged. */
export function explainProviderError(device: Device, err: unknown): unknown {
  if (device.kind === 'cpu' || !(err instanceof Error) || err instanceof DeviceError) return err;
  const hit = FAILURES.find((f) => f.device === device.kind && f.pattern.test(err.message));
  if (!hit) return err;
  const e = new DeviceError(`--device ${device.kind === 'cuda' ? `cuda:${device.id}` : device.kind} cannot be used: ${hit.explain.replace(/\.$/, '')} (onnxruntime: ${err.message.trim().split('\n')[0]!.slice(0, 300)})`);
  e.cause = err;
  return e;
}

/** Where one node ran, from onnxruntime's profile. */
export interface NodePlacement {
  node: string;
  op: string;
  provider: string;
}

/** The nodes of a session run, from the JSON file `endProfiling()` wrote (one entry per node). */
export function placementFromProfile(file: string): NodePlacement[] {
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat?: string; name?: string; args?: { op_name?: string; provider?: string } }[];
  const seen = new Map<string, NodePlacement>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.provider || !e.name?.endsWith('_kernel_time')) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    if (!seen.has(node)) seen.set(node, { node, op: e.args.op_name ?? '?', provider: e.args.provider });
  }
  return [...seen.values()];
}

export interface PlacementSummary {
  /** The provider the nodes should run on. */
  provider: string;
  nodes: number;
  /** Nodes that ran elsewhere (onnxruntime's CPU fallback). */
  fallback: NodePlacement[];
}

/**
 * Why sessions on this device cannot run from several threads at once, or undefined when they can.
 * onnxruntime's WebGPU EP keeps one device context (one Dawn device and command encoder) for the
 * whole process: two worker threads running sessions on it at the same time corrupt the shared
 * encoder ("CommandEncoder is already finished") or crash the process (measured with onnxruntime-node
 * 1.30 on SwiftShader, 5 of 6 two-thread runs). The CPU EP and the CUDA EP run sessions concurrently.
 */
export function concurrentSessionsBlocker(device?: string): string | undefined {
  return parseDevice(device).kind === 'webgpu'
    ? "onnxruntime's WebGPU EP shares one device context across the process and cannot run sessions from several threads at once"
    : undefined;
}

export function summarisePlacement(device: Device, nodes: NodePlacement[]): PlacementSummary {
  const provider = PROVIDER_NAMES[device.kind];
  return { provider, nodes: nodes.length, fallback: nodes.filter((n) => n.provider !== provider) };
}

/** One line: 'all 278 nodes on WebGpuExecutionProvider' or what fell back, by op. */
export function formatPlacement(s: PlacementSummary): string {
  if (!s.fallback.length) return `all ${s.nodes} nodes on ${s.provider}`;
  const byOp = new Map<string, number>();
  for (const n of s.fallback) byOp.set(`${n.op} on ${n.provider.replace('ExecutionProvider', '')}`, (byOp.get(`${n.op} on ${n.provider.replace('ExecutionProvider', '')}`) ?? 0) + 1);
  const ops = [...byOp].map(([k, v]) => `${v}× ${k}`).join(', ');
  return `FALLBACK: ${s.fallback.length} of ${s.nodes} nodes not on ${s.provider} (${ops}; e.g. '${s.fallback[0]!.node}')`;
}

/** Run-log lines for one block's sessions: one when all is placed, one per fallen-back session otherwise. */
export function placementLines(index: number, name: string, train?: PlacementSummary, evaluation?: PlacementSummary): string[] {
  const parts = [train && ['train step', train] as const, evaluation && ['eval', evaluation] as const].filter((p) => p !== undefined);
  if (!parts.length) return [];
  if (parts.every(([, s]) => !s.fallback.length)) return [`    block ${index} ${name} placement: ${parts.map(([k, s]) => `${k} ${formatPlacement(s)}`).join('; ')}`];
  return parts.filter(([, s]) => s.fallback.length).map(([k, s]) => `    block ${index} ${name} ${k}: ${formatPlacement(s)}`);
}
