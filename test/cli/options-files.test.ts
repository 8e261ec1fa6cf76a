/** Options files (--config) and option typo hints. */
import { describe, expect, it } from 'vitest';
import { optionsFromConfigFile } from '../../src/train/configFile.js';
import { OptionError } from '../../src/train/options.js';
import { closest, withOptionSuggestions } from '../../src/cli/suggest.js';
import { readOptionsFile, trainOptions } from '../../src/cli/commands/train.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('optionsFromConfigFile', () => {
  it("reads a run's config.json: options, set runtime choices, a square image size; drops classes", () => {
    const o = optionsFromConfigFile(
      {
        format: 'sff-finetune/run-config@1',
        options: { model: 'm.onnx', data: 'd', lr: 0.01, imageSize: [32, 32], classes: ['a', 'b'], testData: 't', maxStepsPerEpoch: 5 },
        runtime: { device: 'cpu', threads: 2, memArena: false, cacheDir: null, noExport: false },
      },
      'config.json',
    );
    expect(o).toEqual({ model: 'm.onnx', data: 'd', lr: 0.01, imageSize: 32, testData: 't', maxStepsPerEpoch: 5, device: 'cpu', threads: 2 });
  });

  it("gives a run's held-out test share back as --split, and reads the transfer options", () => {
    const o = optionsFromConfigFile(
      { format: 'sff-finetune/run-config@1', options: { valFraction: 0.15, testFraction: 0.15, headBlock: true, headInit: 'matched', pooledHeads: 0, schedule: 'cosine', warmup: 0.5, labelSmoothing: 0.1, augment: 'rrc' }, runtime: {} },
      'config.json',
    );
    expect(o).toMatchObject({ headBlock: true, headInit: 'matched', pooledHeads: 0, schedule: 'cosine', warmup: 0.5, labelSmoothing: 0.1, augment: 'rrc' });
    expect(o.valFraction).toBeUndefined();
    const [train, val, test] = o.split!.split('/').map(Number);
    expect(train).toBeCloseTo(0.7, 12);
    expect(val).toBe(0.15);
    expect(test).toBe(0.15);
  });

  it('reads a plain object of library options and names an unknown key', () => {
    expect(optionsFromConfigFile({ epochs: 3, batchSize: 16 }, 'o.json')).toEqual({ epochs: 3, batchSize: 16 });
    expect(() => optionsFromConfigFile({ epoch: 3 }, 'o.json')).toThrow(OptionError);
    expect(() => optionsFromConfigFile({ epoch: 3 }, 'o.json')).toThrow(/o\.json: unknown option 'epoch'/);
    expect(() => optionsFromConfigFile([1], 'o.json')).toThrow(/expected an object/);
    expect(() => optionsFromConfigFile({ imageSize: [32, 48] }, 'o.json')).toThrow(/not square/);
  });
});

describe('readOptionsFile (--config FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sff-config-'));
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads YAML with flag names or option names, and the same options as JSON', () => {
    const yaml = write('run.yaml', '# transfer run\nmodel: m.onnx\ndata: imgs\nbatch-size: 16\nlr: 3.0e-4\nlabel-smoothing: 0.1\nsplit: 70/15/15\nfreeze:\n  - stem\n');
    const json = write('run.json', JSON.stringify({ model: 'm.onnx', data: 'imgs', batchSize: 16, lr: 3e-4, labelSmoothing: 0.1, split: '70/15/15', freeze: ['stem'] }));
    const fromYaml = readOptionsFile(yaml);
    expect(fromYaml).toEqual({ model: 'm.onnx', data: 'imgs', batchSize: 16, lr: 3e-4, labelSmoothing: 0.1, split: '70/15/15', freeze: ['stem'] });
    expect(readOptionsFile(json)).toEqual(fromYaml);
  });

  it('lets flags given on the command line win over the file', () => {
    const file = readOptionsFile(write('base.yml', 'model: m.onnx\ndata: imgs\nepochs: 7\nlr: 0.01\n'));
    const o = trainOptions({ lr: 0.002 } as Parameters<typeof trainOptions>[0], file);
    expect(o.epochs).toBe(7);
    expect(o.lr).toBe(0.002);
    expect(o.model).toBe('m.onnx');
  });

  it('names the file and the format when it does not parse, and an unknown key', () => {
    const bad = write('bad.yaml', 'lr: [1e-3\n');
    expect(() => readOptionsFile(bad)).toThrow(new RegExp(`--config ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid YAML`));
    expect(() => readOptionsFile(write('bad.json', '{lr: 1}'))).toThrow(/bad\.json: not valid JSON/);
    expect(() => readOptionsFile(write('typo.yaml', 'epoch: 3\n'))).toThrow(/typo\.yaml: unknown option 'epoch'/);
  });
});

describe('option suggestions', () => {
  it('suggests the closest known option for a near miss only', () => {
    const known = ['epochs', 'batch-size', 'lr', 'export-heads'];
    expect(closest('epoch', known)).toBe('epochs');
    expect(closest('bach-size', known)).toBe('batch-size');
    expect(closest('completely-else', known)).toBeUndefined();
    expect(withOptionSuggestions('Unknown arguments: epoch, export-head', known)).toBe(
      'Unknown arguments: epoch, export-head\n--epoch → did you mean --epochs?\n--export-head → did you mean --export-heads?',
    );
    expect(withOptionSuggestions('Missing required argument: data', known)).toBe('Missing required argument: data');
  });
});
