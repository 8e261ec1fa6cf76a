/**
 * The WebGPU tests' adapter: a real GPU's Vulkan driver where there is one, else SwiftShader (the
 * CPU Vulkan driver Debian's chromium package ships), located here so `npm test` alone finds it.
 * `webgpuSkipReason` is undefined when a WebGPU session runs, else why not (for `describe.skipIf`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { Graph, makeModel } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { encodeModel } from '../../src/onnx/io.js';
import { DataType } from '../../src/ir/types.js';

const KNOWN_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib/chromium-browser/vk_swiftshader_icd.json', '/usr/lib64/chromium-browser/vk_swiftshader_icd.json'];

/** The SwiftShader ICD file: a known path, else the one dpkg lists for chromium-common. */
export function locateSwiftShaderIcd(): string | undefined {
  const known = KNOWN_ICDS.find((p) => existsSync(p));
  if (known) return known;
  try {
    const listed = execFileSync('dpkg', ['-L', 'chromium-common'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return listed.split('\n').find((l) => l.endsWith('swiftshader_icd.json') && existsSync(l));
  } catch {
    return undefined;
  }
}

/** Runs a one-node graph on the WebGPU EP alone (no CPU fallback): throws when no adapter answers. */
async function runOnWebgpu(): Promise<void> {
  const g = new Graph();
  g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [4] } });
  const b = new GraphBuilder(g);
  g.outputs.push({ name: b.op('Relu', ['x']) });
  const session = await ort.InferenceSession.create(encodeModel(makeModel(g, 17)), { executionProviders: ['webgpu'], logSeverityLevel: 3 });
  try {
    await session.run({ x: new ort.Tensor('float32', new Float32Array([-1, 0, 1, 2]), [4]) });
  } finally {
    await session.release();
  }
}

async function probe(): Promise<string | undefined> {
  // Dawn reads VK_ICD_FILENAMES when the first WebGPU session starts, so it is set before that.
  const icd = process.env.VK_ICD_FILENAMES ? undefined : locateSwiftShaderIcd();
  if (icd) process.env.VK_ICD_FILENAMES = icd;
  try {
    await runOnWebgpu();
    return undefined;
  } catch (e) {
    const why = String(e instanceof Error ? e.message : e).split('\n')[0]!.slice(0, 200);
    return (
      `no WebGPU adapter (${why}). Install Debian's chromium package for SwiftShader and the Vulkan loader ` +
      '(`apt-get install chromium libvulkan1`; the tests find its ICD, or set VK_ICD_FILENAMES), or run on a machine with a Vulkan GPU driver'
    );
  }
}

export const webgpuSkipReason: string | undefined = await probe();

const warned = new Set<string>();
/** Prints once per file why its WebGPU tests are skipped. */
export function warnWebgpuSkip(file: string): void {
  if (!webgpuSkipReason || warned.has(file)) return;
  warned.add(file);
  console.warn(`${file}: WebGPU tests skipped — ${webgpuSkipReason}`);
}

/** The Vulkan driver in use, for messages: SwiftShader is a CPU emulating a GPU (slow, exact float32). */
export const webgpuDriver = (): string => process.env.VK_ICD_FILENAMES ?? 'the system Vulkan driver';
