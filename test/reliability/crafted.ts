/**
 * Hostile models built in-test: a small chain CNN whose input size, block names (module scopes)
 * and external-data locations are chosen by the test.
 */
import { Graph, makeModel, type Model } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { DataType } from '../../src/ir/types.js';

function weights(name: string, dims: number[], seed: number): ReturnType<typeof floatTensor> {
  const n = dims.reduce((a, b) => a * b, 1);
  let s = seed >>> 0;
  return floatTensor(name, dims, Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.4));
}

/**
 * conv 3→8 (scope A) → relu → conv 8→8 stride 2 (scope B) → relu → GAP → flatten → gemm.
 * `scopes` become the `pkg.torch.onnx.name_scopes` metadata of the two stages (dynamo-style),
 * which is where block names come from.
 */
export function craftedCnn(opts: { size?: number; scopes?: [string, string]; classes?: number; activations?: [string, string] } = {}): Model {
  const [act0, act1] = opts.activations ?? ['Relu', 'Relu'];
  const size = opts.size ?? 16;
  const classes = opts.classes ?? 3;
  const [sa, sb] = opts.scopes ?? ['features.0', 'features.1'];
  const g = new Graph();
  const b = new GraphBuilder(g);
  g.inputs.push({ name: 'image', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', 3, size, size] } });
  const meta = (scope: string) => ({ metadataProps: [{ key: 'pkg.torch.onnx.name_scopes', value: `['', '${scope}']` }] });
  const stage = (x: string, cin: number, stride: number, scope: string, k: number): string => {
    const w = b.initializer(weights(`${scope}.w${k}`, [8, cin, 3, 3], k + 1));
    const c = b.node('Conv', [x, w], { kernel_shape: [3, 3], strides: [stride, stride], pads: [1, 1, 1, 1] }, { name: `conv${k}` })[0]!;
    const r = b.node(k === 0 ? act0 : act1, [c], {}, { name: `relu${k}` })[0]!;
    for (const n of g.nodes.slice(-2)) n.extra = meta(scope);
    return r;
  };
  let x = stage('image', 3, 1, sa, 0);
  x = stage(x, 8, 2, sb, 1);
  x = b.node('GlobalAveragePool', [x], {}, { name: 'gap' })[0]!;
  x = b.node('Flatten', [x], { axis: 1 }, { name: 'flatten' })[0]!;
  const out = b.node('Gemm', [x, b.initializer(weights('fc.w', [classes, 8], 9)), b.initializer(weights('fc.b', [classes], 10))], { transB: 1 }, { name: 'fc', outputs: ['logits'] })[0]!;
  g.outputs.push({ name: out, type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', classes] } });
  return makeModel(g, 17);
}
