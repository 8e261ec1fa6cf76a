import { describe, it } from 'vitest';
import { checkGradients } from './harness.js';

// eps 1e-3; |analytic - numeric| <= 1e-3 + 1e-2|numeric|.
const tol = { eps: 1e-3, rtol: 1e-2, atol: 1e-3 };
const x234 = { dims: [2, 3, 4], trainable: true };

describe('shape ops (central differences)', () => {
  it('Flatten, Reshape, Transpose (explicit and default perm)', async () => {
    await checkGradients({ ...tol, inputs: { x: x234 }, build: (b, i) => b.op('Flatten', [i.x!], { axis: 2 }) });
    await checkGradients({ ...tol, inputs: { x: x234 }, build: (b, i) => b.op('Reshape', [i.x!, b.constInt64([4, -1])]) });
    await checkGradients({ ...tol, inputs: { x: x234 }, build: (b, i) => b.op('Transpose', [i.x!], { perm: [1, 2, 0] }) });
    await checkGradients({ ...tol, inputs: { x: x234 }, build: (b, i) => b.op('Transpose', [i.x!]) });
  });

  it('Squeeze / Unsqueeze, axes as input (13+) and attribute (11)', async () => {
    const x = { dims: [2, 1, 3], trainable: true };
    await checkGradients({ ...tol, inputs: { x }, build: (b, i) => b.op('Unsqueeze', [b.op('Squeeze', [i.x!, b.constInt64([1])]), b.constInt64([0, 3])]) });
    await checkGradients({ ...tol, opset: 11, inputs: { x }, build: (b, i) => b.op('Unsqueeze', [b.op('Squeeze', [i.x!], { axes: [1] })], { axes: [0, 3] }) });
  });

  it('Concat of three inputs (two trainable) along axis 1 and -1', async () => {
    for (const axis of [1, -1]) {
      const dims = (k: number) => (axis === 1 ? [2, k, 3] : [2, 3, k]);
      await checkGradients({
        ...tol,
        inputs: { a: { dims: dims(2), trainable: true }, c: { dims: dims(1) }, d: { dims: dims(3), trainable: true } },
        build: (b, i) => b.op('Concat', [i.a!, i.c!, i.d!], { axis }),
      });
    }
    await checkGradients({ ...tol, opset: 11, inputs: { a: { dims: [2, 3], trainable: true }, d: { dims: [2, 2], trainable: true } }, build: (b, i) => b.op('Concat', [i.a!, i.d!], { axis: 1 }) });
  });

  it('Split with a split input, num_outputs (18), attribute (11), one unused output', async () => {
    const x = { dims: [2, 6], trainable: true };
    await checkGradients({
      ...tol,
      inputs: { x },
      build: (b, i) => {
        const [p, , r] = b.node('Split', [i.x!, b.constInt64([1, 2, 3])], { axis: 1 }, { outputs: 3 }) as [string, string, string];
        return b.op('Concat', [b.op('Mul', [p, b.constFloat([2])]), r], { axis: 1 });
      },
    });
    await checkGradients({
      ...tol,
      opset: 18,
      inputs: { x },
      build: (b, i) => {
        const [p, q] = b.node('Split', [i.x!], { axis: -1, num_outputs: 2 }, { outputs: 2 }) as [string, string];
        return b.op('Mul', [p, q]);
      },
    });
    await checkGradients({
      ...tol,
      opset: 11,
      inputs: { x },
      build: (b, i) => b.node('Split', [i.x!], { axis: 1, split: [4, 2] }, { outputs: 2 })[1]!,
    });
  });

  const sliceCases: [string, number[], number[], number[] | undefined, number[] | undefined][] = [
    ['unit steps, two axes', [1, 1], [3, 4], [1, 2], undefined],
    ['negative and clamped indices', [-2, -100], [1000, -1], [1, 2], [1, 1]],
    ['step 2', [0], [5], [2], [2]],
    ['step 3 from 1, end past the last pick', [1], [7], [2], [3]],
    ['negative step -2', [-1], [-100], [2], [-2]],
    ['negative step -1 with a stride-2 axis', [2, 0], [0, 7], [1, 2], [-1, 2]],
    ['default axes', [0, 1], [1, 3], undefined, undefined],
  ];
  for (const [label, starts, ends, axes, steps] of sliceCases)
    it(`Slice: ${label}`, async () => {
      await checkGradients({
        ...tol,
        inputs: { x: { dims: [2, 3, 7], trainable: true } },
        build: (b, i) => {
          const ins = [i.x!, b.constInt64(starts), b.constInt64(ends)];
          if (axes || steps) ins.push(axes ? b.constInt64(axes) : '');
          if (steps) ins.push(b.constInt64(steps));
          return b.op('Slice', ins);
        },
      });
    });

  it('Slice with computed (non-constant) starts: scatter fallback', async () => {
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [2, 3, 7], trainable: true }, s: { dims: [1], data: new BigInt64Array([1n]), dtype: 'int64', feed: true } },
      build: (b, i) => b.op('Slice', [i.x!, i.s!, b.constInt64([7]), b.constInt64([2]), b.constInt64([2])]),
    });
  });

  it('Slice at opset 9 (attributes)', async () => {
    await checkGradients({ ...tol, opset: 9, inputs: { x: x234 }, build: (b, i) => b.op('Slice', [i.x!], { starts: [1, -3], ends: [3, 100], axes: [1, 2] }) });
  });

  it('Pad (constant mode): positive, negative (crop) pads, axes input (18), attribute (10), pad value', async () => {
    await checkGradients({ ...tol, inputs: { x: x234 }, build: (b, i) => b.op('Pad', [i.x!, b.constInt64([0, 1, 2, 1, 0, 3])]) });
    await checkGradients({ ...tol, inputs: { x: x234 }, build: (b, i) => b.op('Pad', [i.x!, b.constInt64([0, -1, 2, 1, 0, -2])]) });
    await checkGradients({ ...tol, opset: 18, inputs: { x: x234 }, build: (b, i) => b.op('Pad', [i.x!, b.constInt64([1, 2, 0, 1]), '', b.constInt64([-1, 0])]) });
    await checkGradients({ ...tol, opset: 10, inputs: { x: x234 }, build: (b, i) => b.op('Pad', [i.x!], { pads: [0, 1, 1, 0, 2, 0] }) });
    await checkGradients({
      ...tol,
      inputs: { x: x234, v: { dims: [], data: new Float32Array([0.3]), trainable: true } },
      build: (b, i) => b.op('Pad', [i.x!, b.constInt64([0, 1, -1, 1, 0, 2]), i.v!]),
    });
  });

  it('Expand and Tile', async () => {
    await checkGradients({ ...tol, inputs: { x: { dims: [3, 1], trainable: true } }, build: (b, i) => b.op('Expand', [i.x!, b.constInt64([2, 3, 4])]) });
    await checkGradients({ ...tol, inputs: { x: { dims: [2, 3], trainable: true } }, build: (b, i) => b.op('Tile', [i.x!, b.constInt64([2, 1])]) });
    await checkGradients({ ...tol, inputs: { x: { dims: [2, 1, 3], trainable: true } }, build: (b, i) => b.op('Tile', [i.x!, b.constInt64([3, 2, 2])]) });
  });
});

describe('indexing (central differences)', () => {
  const idx = new BigInt64Array([2n, 0n, -1n, 2n]); // repeated and negative indices
  for (const opset of [17, 13])
    for (const axis of [0, 1, -1])
      it(`Gather axis ${axis}, indices [2,2] with repeats, opset ${opset}`, async () => {
        await checkGradients({
          ...tol,
          opset,
          inputs: { x: { dims: [3, 3, 3], trainable: true }, i: { dims: [2, 2], data: idx, dtype: 'int64' } },
          build: (b, i) => b.op('Gather', [i.x!, i.i!], { axis }),
        });
      });

  it('Gather with a scalar index', async () => {
    await checkGradients({
      ...tol,
      inputs: { x: { dims: [4, 3], trainable: true }, i: { dims: [], data: new BigInt64Array([1n]), dtype: 'int64' } },
      build: (b, i) => b.op('Gather', [i.x!, i.i!], { axis: 0 }),
    });
  });

  for (const opset of [17, 13])
    for (const axis of [0, 1])
      it(`GatherElements axis ${axis}, smaller indices, repeats, opset ${opset}`, async () => {
        await checkGradients({
          ...tol,
          opset,
          inputs: {
            x: { dims: [3, 4], trainable: true },
            i: { dims: [2, 3], data: new BigInt64Array([0n, 2n, 1n, 1n, -1n, 0n]), dtype: 'int64', feed: true },
          },
          build: (b, i) => b.op('GatherElements', [i.x!, i.i!], { axis }),
        });
      });
});
