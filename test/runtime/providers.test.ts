/**
 * Device choice and its failures: `--device` parsing, each device's execution providers and graph
 * target, and the messages for a missing CUDA provider library (checked for real: this project's
 * onnxruntime-node ships without it), no GPU, wrong CUDA, and no WebGPU adapter (for real, in a
 * child process whose Vulkan loader is pointed at no driver).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bindingDir,
  checkProviderInstalled,
  concurrentSessionsBlocker,
  CUDA_PROVIDER_LIBRARIES,
  DeviceError,
  executionProviders,
  explainProviderError,
  formatPlacement,
  graphTarget,
  parseDevice,
  placementLines,
  summarisePlacement,
} from '../../src/runtime/providers.js';
import { createSession, sessionOptions } from '../../src/runtime/session.js';
import { createModel } from '../../src/models/index.js';
import { CLI as cli, REPO_ROOT as root, ensureCliBuilt } from '../helpers/cli.js';

const cudaInstalled = CUDA_PROVIDER_LIBRARIES.every((f) => existsSync(join(bindingDir(), f)));
if (cudaInstalled) console.warn('test/runtime/providers.test.ts: the CUDA provider library is installed here; the library-absent tests are skipped');

describe('--device', () => {
  it('parses cpu, cuda, cuda:<id> and webgpu, and maps each to its graph target and providers', () => {
    expect(parseDevice()).toEqual({ kind: 'cpu', id: 0 });
    expect(parseDevice('cuda:1')).toEqual({ kind: 'cuda', id: 1 });
    expect(parseDevice('webgpu')).toEqual({ kind: 'webgpu', id: 0 });
    expect(graphTarget('webgpu')).toBe('webgpu');
    expect(graphTarget('cuda:2')).toBe('cuda');
    expect(graphTarget(undefined)).toBe('cpu');
    expect(executionProviders(parseDevice('cuda:1'))).toEqual([{ name: 'cuda', deviceId: 1 }, 'cpu']);
    expect(executionProviders(parseDevice('webgpu'))).toEqual(['webgpu', 'cpu']);
    expect(sessionOptions({ device: 'webgpu' }).executionProviders).toEqual(['webgpu', 'cpu']);
  });
  it('rejects what it does not know, naming the flag and the choices', () => {
    for (const bad of ['gpu', 'webgpu:1', 'cpu:0', 'cuda:x', 'CUDA'])
      expect(() => parseDevice(bad), bad).toThrow(new DeviceError(`--device '${bad}' is not understood: use cpu, cuda, cuda:<id>, webgpu`));
  });
});

describe.skipIf(cudaInstalled)('--device cuda without the CUDA provider library', () => {
  it('says which library is missing where, and how to install it, before any session starts', () => {
    expect(() => checkProviderInstalled(parseDevice('cuda'))).toThrow(DeviceError);
    expect(() => checkProviderInstalled(parseDevice('cuda'))).toThrow(/libonnxruntime_providers_shared\.so, libonnxruntime_providers_cuda\.so missing in .*onnxruntime-node.*ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/);
    // Also for a folder given explicitly (e.g. a partial install).
    expect(() => checkProviderInstalled(parseDevice('cuda:1'), mkdtempSync(join(tmpdir(), 'sff-noort-')))).toThrow(/CUDA provider library is not installed/);
  });
  it('a session on cuda fails with that DeviceError, not onnxruntime’s bare message', async () => {
    const err = await createSession(createModel('cnn', { imageSize: 8 }), { device: 'cuda' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as Error).message).toMatch(/^--device cuda cannot be used: onnxruntime's CUDA provider library is not installed/);
  });
});

describe('provider failures in words', () => {
  const cuda = parseDevice('cuda:0');
  const cases: [string, RegExp][] = [
    // onnxruntime-node's own message when the provider library cannot be loaded (seen with it absent).
    ['OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library', /CUDA provider library could not be loaded.*ONNXRUNTIME_NODE_INSTALL=cuda12/],
    ['Failed to load library libonnxruntime_providers_cuda.so with error: libcudart.so.12: cannot open shared object file: No such file or directory', /wrong or missing CUDA: .*CUDA 12 and cuDNN 9/],
    ['Failed to load library libonnxruntime_providers_cuda.so with error: libcudnn.so.9: cannot open shared object file', /wrong or missing CUDA/],
    ['CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version ; GPU=0', /wrong CUDA: the NVIDIA driver is older/],
    ['CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=x', /no GPU: .*nvidia-smi/],
    ['CUDA failure 101: invalid device ordinal ; GPU=3', /no GPU: .*--device cuda:<id>/],
  ];
  for (const [native, want] of cases)
    it(native.slice(0, 60), () => {
      const e = explainProviderError(cuda, new Error(native));
      expect(e).toBeInstanceOf(DeviceError);
      expect((e as Error).message).toMatch(/^--device cuda:0 cannot be used: /);
      expect((e as Error).message).toMatch(want);
      expect((e as Error).message).toContain(native.slice(0, 40));
    });
  it('leaves other errors (bad graphs, CPU) alone', () => {
    const other = new Error('Non-zero status code returned while running Conv node');
    expect(explainProviderError(cuda, other)).toBe(other);
    expect(explainProviderError(parseDevice('cpu'), new Error('Failed to load shared library'))).toBeInstanceOf(Error);
    expect(explainProviderError(parseDevice('cpu'), new Error('Failed to load shared library'))).not.toBeInstanceOf(DeviceError);
  });
});

describe('--device webgpu with no adapter', () => {
  it('the CLI says there is no GPU adapter and how to get one (Vulkan loader pointed at no driver)', () => {
    ensureCliBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'sff-nogpu-'));
    execFileSync('node', [cli, 'create', 'cnn', '--image-size', '8', '-o', join(dir, 'cnn.onnx')], { cwd: root, stdio: 'pipe' });
    const env = { ...process.env, VK_ICD_FILENAMES: join(dir, 'no-such-icd.json'), VK_DRIVER_FILES: join(dir, 'no-such-icd.json') };
    const r = spawnSync('node', [cli, 'eval', join(dir, 'cnn.onnx'), '--data', 'builtin:shapes', '--device', 'webgpu'], { cwd: root, env, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/sff-finetune: --device webgpu cannot be used: no GPU adapter: .*Vulkan driver.*VK_ICD_FILENAMES/);
  }, 60_000);
});

describe('placement reports', () => {
  it('name every node that left the device, by op, and say FALLBACK', () => {
    const dev = parseDevice('webgpu');
    const nodes = [
      { node: '/a/Conv', op: 'Conv', provider: 'WebGpuExecutionProvider' },
      { node: '/loss/LogSoftmax', op: 'LogSoftmax', provider: 'CPUExecutionProvider' },
      { node: '/grad/Sum', op: 'Sum', provider: 'CPUExecutionProvider' },
    ];
    const s = summarisePlacement(dev, nodes);
    expect(s.fallback.map((n) => n.node)).toEqual(['/loss/LogSoftmax', '/grad/Sum']);
    expect(formatPlacement(s)).toBe("FALLBACK: 2 of 3 nodes not on WebGpuExecutionProvider (1× LogSoftmax on CPU, 1× Sum on CPU; e.g. '/loss/LogSoftmax')");
    expect(placementLines(2, 'layer2', s, summarisePlacement(dev, nodes.slice(0, 1)))).toEqual([`    block 2 layer2 train step: ${formatPlacement(s)}`]);
    expect(placementLines(0, 'stem', summarisePlacement(dev, nodes.slice(0, 1)))).toEqual(['    block 0 stem placement: train step all 1 nodes on WebGpuExecutionProvider']);
  });
});

describe('devices whose sessions cannot run on several threads at once', () => {
  it('names the WebGPU EP (one process-wide device context), not the CPU or CUDA EPs', () => {
    expect(concurrentSessionsBlocker('webgpu')).toMatch(/WebGPU EP shares one device context across the process/);
    for (const d of [undefined, 'cpu', 'cuda', 'cuda:1']) expect(concurrentSessionsBlocker(d)).toBeUndefined();
  });
});
