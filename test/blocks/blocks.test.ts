/** Cuts, SFF blocks and the inspect report. */
import { describe, expect, it } from 'vitest';
import type { ImportedModel } from '../../src/import/index.js';
import { importModel } from '../../src/import/index.js';
import { splitIntoBlocks, splitIntoBlocksDetailed, BlockSpecError, type SplitBlock as Block } from '../../src/blocks/index.js';
import { findCuts } from '../../src/ir/cuts.js';
import { inspectModel, formatInspectReport, parseBlockSpec, parseImageSize } from '../../src/cli/commands/inspect.js';
import { loadModel } from '../../src/onnx/io.js';
import { toyChainCnn, toyResNet } from '../import/toy.js';
import { hasShared, hasTorchvision, SHARED_MOBILENET, torchvision, warnSkip } from '../helpers/shared.js';

warnSkip('test/blocks/blocks.test.ts', 'shared');
warnSkip('test/blocks/blocks.test.ts', 'torchvision');

function expectConsistent(im: ImportedModel, blocks: Block[]): void {
  const sum = blocks.reduce((a, b) => a + b.paramCount, 0);
  expect(sum + im.head.paramCount).toBe(im.paramCount);
  expect(blocks[0]!.input).toBe(im.input);
  expect(blocks[blocks.length - 1]!.output).toBe(im.feature);
  for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.input).toBe(blocks[i - 1]!.output);
  expect(blocks.reduce((a, b) => a + b.nodes.length, 0)).toBe(im.bodyNodes.length);
  // BatchNorm stays with the conv it follows.
  for (const b of blocks)
    for (const n of b.nodes)
      if (n.opType === 'BatchNormalization') expect(b.nodes.some((c) => c.outputs[0] === n.inputs[0])).toBe(true);
}

const producerOf = (im: ImportedModel, node: string) => im.model.graph.nodes.find((n) => n.name === node)!.outputs[0]!;

describe('findCuts', () => {
  it('never cuts between the branches of a residual Add', async () => {
    const im = await importModel(toyResNet());
    const cuts = findCuts(im.model.graph, { from: im.input, to: im.feature });
    const g = im.model.graph;
    const name = (n: string) => producerOf(im, n);
    expect(cuts).toContain(name('/maxpool/MaxPool'));
    expect(cuts).toContain(name('/layer1/layer1.0/Add'));
    expect(cuts).toContain(name('/layer1/layer1.0/relu_1/Relu'));
    expect(cuts).not.toContain(name('/layer1/layer1.0/relu/Relu'));
    expect(cuts).not.toContain(name('/layer2/layer2.0/downsample/0/Conv'));
    expect(cuts[cuts.length - 1]).toBe(im.feature);
    // The residual branch feeding each Add is never a cut (only the skip's source may be).
    for (const n of g.nodes.filter((x) => x.opType === 'Add')) expect(n.inputs.filter((i) => cuts.includes(i)).length).toBeLessThanOrEqual(1);
    expect(cuts).not.toContain(producerOf(im, '/layer1/layer1.0/conv2/Conv'));
    // Default target: the graph outputs.
    expect(findCuts(g).at(-1)).toBe('logits');
  });
});

describe('splitIntoBlocks (in-test graphs)', () => {
  it('scoped toy ResNet: stem, layer1, layer2 — eval and training form alike', async () => {
    const shapes: string[][] = [];
    for (const bn of ['none', 'train13', 'train14'] as const) {
      const im = await importModel(toyResNet({ bn, opset: bn === 'train14' ? 14 : 13 }));
      const r = splitIntoBlocksDetailed(im);
      expect(r.method).toBe('scopes');
      expect(r.blocks.map((b) => b.name)).toEqual(['stem', 'layer1', 'layer2']);
      expectConsistent(im, r.blocks);
      shapes.push(r.blocks.map((b) => String(b.outputShape)));
    }
    expect(shapes[1]).toEqual(shapes[0]);
    expect(shapes[2]).toEqual(shapes[0]);
  });

  it('unscoped toy ResNet falls back to residual cuts with the same boundaries', async () => {
    const scoped = splitIntoBlocks(await importModel(toyResNet()));
    const im = await importModel(toyResNet({ scoped: false }));
    const r = splitIntoBlocksDetailed(im);
    expect(r.method).toBe('residual-cuts');
    expect(r.blocks.map((b) => b.name)).toEqual(['stem', 'block1', 'block2']);
    expect(r.blocks.map((b) => b.paramCount)).toEqual(scoped.map((b) => b.paramCount));
    expectConsistent(im, r.blocks);
  });

  it('unscoped chain CNN: one block per conv (+relu, pool)', async () => {
    const im = await importModel(toyChainCnn());
    const r = splitIntoBlocksDetailed(im);
    expect(r.method).toBe('conv-cuts');
    expect(r.blocks.map((b) => b.nodes.map((n) => n.opType).join(','))).toEqual(['Conv,Relu,MaxPool', 'Conv,Relu,MaxPool', 'Conv,Relu']);
    expectConsistent(im, r.blocks);
  });

  it("'cuts' gives one block per cut; an explicit list is validated", async () => {
    const im = await importModel(toyResNet());
    const all = splitIntoBlocks(im, 'cuts');
    expect(all.length).toBe(findCuts(im.model.graph, { from: im.input, to: im.feature }).length);
    expectConsistent(im, all);
    const mid = producerOf(im, '/layer1/layer1.0/relu_1/Relu');
    const two = splitIntoBlocks(im, [mid]);
    expect(two.map((b) => b.output)).toEqual([mid, im.feature]);
    expectConsistent(im, two);
    const branch = producerOf(im, '/layer1/layer1.0/relu/Relu');
    expect(() => splitIntoBlocks(im, [branch])).toThrow(BlockSpecError);
    expect(() => splitIntoBlocks(im, [branch])).toThrow(new RegExp(`'${branch}' is not a cut`));
    expect(() => splitIntoBlocks(im, ['nope'])).toThrow(/'nope' is not in the graph/);
    expect(() => splitIntoBlocks(im, ['logits'])).toThrow(/inside the classifier head/);
  });

  it('parses CLI block specs and image sizes', () => {
    expect(parseBlockSpec(undefined)).toBe('auto');
    expect(parseBlockSpec('cuts')).toBe('cuts');
    expect(parseBlockSpec('a, b')).toEqual(['a', 'b']);
    expect(parseImageSize('224')).toEqual([224, 224]);
    expect(parseImageSize('160,128')).toEqual([160, 128]);
    expect(() => parseImageSize('0x3')).toThrow(/--image-size/);
  });
});

describe.skipIf(!hasTorchvision)('blocks of torchvision exports', () => {
  const RESNET = ['stem', 'layer1', 'layer2', 'layer3', 'layer4'];
  const MOBILENET = Array.from({ length: 12 }, (_, i) => `features.${i}`);
  for (const [arch, names] of [['resnet18', RESNET], ['mobilenet_v3_small', MOBILENET]] as const) {
    it(`${arch}: eval/train × op13/op17 give the SPEC blocks, identical structure`, async () => {
      let ref: string | undefined;
      for (const form of ['eval', 'train'])
        for (const op of [13, 17]) {
          const r = await inspectModel(torchvision(`${arch}_${form}_op${op}`));
          expect(r.blocks.map((b) => b.name)).toEqual(names);
          expect(r.blockMethod).toBe('scopes');
          expect(r.blocks.reduce((a, b) => a + b.paramCount, 0) + r.head.paramCount).toBe(r.paramCount);
          const structure = JSON.stringify(r.blocks.map((b) => [b.name, b.outputShape, b.first.replace(/\/[^/]+$/, '')]));
          ref ??= structure;
          expect(structure).toBe(ref);
        }
    }, 60_000);
  }
  it('inspect report is printable and names the head', async () => {
    const r = await inspectModel(torchvision('mobilenet_v3_small_eval_op17_c10'));
    expect(r.head.classes).toBe(10);
    expect(r.head.projection[0]).toBe('/features/features.12/features.12.0/Conv');
    const text = formatInspectReport(r);
    expect(text).toMatch(/SFF blocks \(12, by scopes\)/);
    expect(text).toMatch(/features\.11/);
  }, 30_000);
  it('squeezenet1_1: blocks end at the Fire module before the 1×1-conv classifier', async () => {
    const im = await importModel(loadModel(torchvision('squeezenet1_1_eval_op13')));
    const blocks = splitIntoBlocks(im);
    expect(blocks[0]!.name).toBe('stem');
    expect(blocks.at(-1)!.name).toBe('features.12');
    expectConsistent(im, blocks);
  }, 30_000);
});

describe.skipIf(!hasShared)('blocks of the shared MobileNetV3 (no scopes)', () => {
  it('stem + 15 inverted-residual blocks', async () => {
    const im = await importModel(loadModel(SHARED_MOBILENET));
    const r = splitIntoBlocksDetailed(im);
    expect(r.method).toBe('residual-cuts');
    expect(r.blocks).toHaveLength(16);
    expect(r.blocks.map((b) => b.output)).toEqual(['t2', 't17', 't31', 't81', 't98', 't100', 't110', 't127', 't129', 't139', 't149', 't40', 't42', 't59', 't61', 't71']);
    expect(r.blocks.map((b) => b.outputShape![1])).toEqual([16, 16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160]);
    expectConsistent(im, r.blocks);
  }, 30_000);
  it('inspect --blocks with an explicit list; a non-cut is named', async () => {
    const r = await inspectModel(SHARED_MOBILENET, { blocks: ['t2', 't81'] });
    expect(r.blocks.map((b) => b.output)).toEqual(['t2', 't81', 't71']);
    await expect(inspectModel(SHARED_MOBILENET, { blocks: ['t18'] })).rejects.toThrow(/'t18' is not a cut/);
  }, 30_000);
});
