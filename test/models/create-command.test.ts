import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import yargs from 'yargs';
import { createCommand } from '../../src/cli/commands/create.js';
import { getMetadata } from '../../src/ir/graph.js';
import { loadModel } from '../../src/onnx/io.js';
import { countParameters } from '../../src/models/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sff-create-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ out: string; error?: Error }> {
  const lines: string[] = [];
  const log = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk).replace(/\n$/, '')), true));
  let error: Error | undefined;
  try {
    await yargs(args)
      .command(createCommand)
      .strict()
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
  } catch (e) {
    error = e as Error;
  } finally {
    log.mockRestore();
  }
  return { out: lines.join('\n'), error };
}

describe('sff-finetune create', () => {
  it('writes the model and prints the path and parameter count', async () => {
    const file = join(dir, 'cnnb.onnx');
    const { out, error } = await cli(['create', 'cnnb', '-o', file]);
    expect(error).toBeUndefined();
    expect(out).toContain(file);
    expect(out).toContain('175,626 parameters');
    const m = loadModel(file);
    expect(getMetadata(m, 'sff.model')).toBe('cnnb');
    expect(countParameters(m)).toBe(175_626);
  });

  it('passes --classes, --image-size, --seed and --fold-bn', async () => {
    const file = join(dir, 'r.onnx');
    const { error } = await cli(['create', 'resnet18', '--classes', '3', '--image-size', '64', '--seed', '5', '--fold-bn', '--out', file]);
    expect(error).toBeUndefined();
    const m = loadModel(file);
    expect(m.graph.inputs[0]!.type).toMatchObject({ shape: ['N', 3, 64, 64] });
    expect(m.graph.outputs[0]!.type).toMatchObject({ shape: ['N', 3] });
    expect(m.graph.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
  }, 60_000); // ResNet18's 11 M parameters: several seconds on a loaded machine

  it('rejects unknown kinds, bad numbers and a missing -o', async () => {
    expect((await cli(['create', 'vgg', '-o', join(dir, 'x.onnx')])).error?.message).toMatch(/Choices|Invalid values/);
    expect((await cli(['create', 'cnn', '--classes', '0', '-o', join(dir, 'x.onnx')])).error?.message).toMatch(/--classes/);
    expect((await cli(['create', 'cnn'])).error?.message).toMatch(/out/);
  });
});
