/** Options files (--config) and option typo hints. */
import { describe, expect, it } from 'vitest';
import { optionsFromConfigFile } from '../../src/train/configFile.js';
import { OptionError } from '../../src/train/options.js';
import { closest, withOptionSuggestions } from '../../src/cli/suggest.js';

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
