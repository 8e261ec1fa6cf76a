/**
 * Compares the built-in resnet18 and mobilenetv3-small with real torchvision models:
 * node names and scopes, op types and conv attributes, initializer names and shapes,
 * parameter counts, and — with torchvision's weights loaded by name — the logits.
 * Needs /usr/bin/python3 with torch + torchvision; skipped (with a warning) otherwise.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { countParameters, createModel, foldBatchNorms } from '../../src/models/index.js';
import type { Model, Node } from '../../src/ir/graph.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/io.js';
import { cloneModel, relDiff, runLogits } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/torchvision_names.py');
const haveTorchvision = spawnSync(PYTHON, ['-c', 'import torchvision, numpy'], { stdio: 'ignore' }).status === 0;
if (!haveTorchvision)
  console.warn(`test/models/torchvision.test.ts: skipped — '${PYTHON} -c "import torchvision, numpy"' failed, so the built-in models are not compared with torchvision`);

const CLASSES = 10;
const SIZE = 64;
const tmp = haveTorchvision ? mkdtempSync(join(tmpdir(), 'sff-tv-')) : '';
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Reference {
  onnx: Model;
  params: number;
  tensors: Map<string, { dims: number[]; data: Float32Array }>;
}

function reference(kind: 'resnet18' | 'mobilenetv3-small'): Reference {
  const onnxPath = join(tmp, `${kind}.onnx`);
  const prefix = join(tmp, kind);
  const r = spawnSync(PYTHON, [SCRIPT, kind, onnxPath, '--classes', String(CLASSES), '--size', String(SIZE), '--dump', prefix], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${SCRIPT} failed (${r.status}): ${r.stderr}`);
  const params = JSON.parse(r.stdout.trim().split('\n').pop()!).params as number;
  const index = JSON.parse(readFileSync(`${prefix}.json`, 'utf8')) as Record<string, { offset: number; dims: number[] }>;
  const bin = readFileSync(`${prefix}.bin`);
  const tensors = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const [name, { offset, dims }] of Object.entries(index)) {
    const n = dims.reduce((a, b) => a * b, 1);
    tensors.set(name, { dims, data: new Float32Array(bin.buffer.slice(bin.byteOffset + offset, bin.byteOffset + offset + 4 * n)) });
  }
  return { onnx: loadModel(onnxPath), params, tensors };
}

const scope = (name: string) => name.slice(0, name.lastIndexOf('/') + 1);
/** Nodes of the torch export that the inference graph leaves out on purpose: the classifier's Dropout. */
const isDropoutPart = (n: Node) => n.name.startsWith('/classifier/classifier.2/');
const convAttrs = (n: Node) => Object.fromEntries(Object.entries(n.attrs).map(([k, a]) => [k, a.value]));

describe.skipIf(!haveTorchvision).each(['resnet18', 'mobilenetv3-small'] as const)('%s matches torchvision', (kind) => {
  const ref = haveTorchvision ? reference(kind) : undefined!;
  const ours = createModel(kind, { classes: CLASSES, imageSize: SIZE });

  it('has the same parameter count', () => {
    expect(countParameters(ours)).toBe(ref.params);
  });

  it('has the same node names, scopes and op types', () => {
    const theirs = ref.onnx.graph.nodes.filter((n) => !isDropoutPart(n));
    expect(ours.graph.nodes.map((n) => n.name)).toEqual(theirs.map((n) => n.name));
    expect(ours.graph.nodes.map((n) => n.opType)).toEqual(theirs.map((n) => n.opType));
    expect(new Set(ours.graph.nodes.map((n) => scope(n.name)))).toEqual(new Set(theirs.map((n) => scope(n.name))));
    // Same wiring (by node names: value names differ only for training-mode BN outputs).
    const producerName = (m: Model) => {
      const p = m.graph.producers();
      return (v: string) => p.get(v)?.name ?? v;
    };
    const po = producerName(ours);
    const pt = producerName(ref.onnx);
    const byName = new Map(theirs.map((n) => [n.name, n]));
    for (const n of ours.graph.nodes) {
      const t = byName.get(n.name)!;
      // Dropout aside, the inputs are the same values.
      const tIn = t.inputs.map((i) => {
        const prod = ref.onnx.graph.producers().get(i);
        return prod && isDropoutPart(prod) ? po(n.inputs[0]!) : pt(i);
      });
      expect(n.inputs.map(po), n.name).toEqual(tIn);
      if (n.opType === 'Conv' || n.opType === 'MaxPool' || n.opType === 'Gemm' || n.opType === 'Flatten')
        expect(convAttrs(n), n.name).toEqual(convAttrs(t));
      if (n.opType === 'BatchNormalization') {
        expect(n.attrs.epsilon!.value, n.name).toBeCloseTo(t.attrs.epsilon!.value as number, 6);
        expect(n.attrs.momentum!.value, n.name).toBeCloseTo(t.attrs.momentum!.value as number, 6);
      }
      if (n.opType === 'HardSigmoid') expect(n.attrs.alpha!.value).toBeCloseTo(t.attrs.alpha!.value as number, 7);
    }
  });

  it('has the same initializer names and shapes', () => {
    const dims = (m: Model) => new Map([...m.graph.initializers.values()].map((t) => [t.name, t.dims]));
    expect(dims(ours)).toEqual(dims(ref.onnx));
  });

  it('computes the same logits with torchvision weights (unfolded and folded BN)', async () => {
    const m = cloneModel(ours);
    for (const [name, t] of m.graph.initializers) {
      const w = ref.tensors.get(name);
      expect(w, name).toBeDefined();
      expect(w!.dims).toEqual(t.dims);
      m.graph.initializers.set(name, floatTensor(name, t.dims, w!.data));
    }
    const x = ref.tensors.get('__input__')!.data;
    const want = ref.tensors.get('__logits__')!;
    const got = await runLogits(m, x, SIZE);
    expect(got.dims).toEqual(want.dims);
    expect(relDiff(got.data, want.data)).toBeLessThan(1e-4);
    foldBatchNorms(m);
    const folded = await runLogits(m, x, SIZE);
    expect(relDiff(folded.data, want.data)).toBeLessThan(1e-4);
  });
});
