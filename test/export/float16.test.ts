/** float32 → IEEE binary16 rounding, checked against onnxruntime's own Cast on the same values. */
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { Graph, makeModel } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/types.js';
import { encodeModel } from '../../src/onnx/io.js';
import { float16Bits } from '../../src/ir/tensor.js';

describe('float16Bits', () => {
  it('knows the landmarks', () => {
    expect(float16Bits(0)).toBe(0);
    expect(float16Bits(-0)).toBe(0x8000);
    expect(float16Bits(1)).toBe(0x3c00);
    expect(float16Bits(-2)).toBe(0xc000);
    expect(float16Bits(65504)).toBe(0x7bff); // the largest half
    expect(float16Bits(65520)).toBe(0x7c00); // rounds up to +Inf
    expect(float16Bits(Infinity)).toBe(0x7c00);
    expect(float16Bits(2 ** -24)).toBe(0x0001); // the smallest subnormal
    expect(float16Bits(2 ** -14)).toBe(0x0400); // the smallest normal
    expect(float16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(float16Bits(NaN) & 0x3ff).not.toBe(0);
  });

  it("matches onnxruntime's Cast(float → float16) on normals, subnormals, ties and overflow", async () => {
    const values = new Float32Array([
      ...Array.from({ length: 2000 }, (_, i) => Math.sinh((i - 1000) / 90) * 1.37),
      ...Array.from({ length: 200 }, (_, i) => (i - 100) * 2 ** -25 * 1.5),
      1 + 2 ** -11, 1 + 3 * 2 ** -11, 2048 + 1, 2048 + 3, 70000, -70000, 1e-9,
    ]);
    const g = new Graph();
    g.inputs.push({ name: 'x', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [values.length] } });
    const b = new GraphBuilder(g, '/t');
    const h = b.op('Cast', ['x'], { to: { type: 'int', value: DataType.FLOAT16 } }, 'cast');
    b.node('Identity', [h], {}, { outputs: ['y'], name: 'out' });
    g.outputs.push({ name: 'y', type: { kind: 'tensor', elemType: DataType.FLOAT16, shape: [values.length] } });
    const s = await ort.InferenceSession.create(encodeModel(makeModel(g, 17)));
    const y = (await s.run({ x: new ort.Tensor('float32', values, [values.length]) })).y!.data as Uint16Array;
    const mine = Array.from(values, float16Bits);
    expect(mine).toEqual(Array.from(y));
    await s.release();
  });
});
