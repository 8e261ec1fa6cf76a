/** `bench --device … --throughput-cases …`: the case list the device check passes, and a bad one. */
import { describe, expect, it } from 'vitest';
import { parseThroughputCases } from '../../src/cli/commands/bench.js';

describe('bench --throughput-cases', () => {
  it('reads model:imageSize:batch lists, built-in names or paths', () => {
    expect(parseThroughputCases('resnet18:224:64, cnnb:32:128,models/x.onnx:96:8')).toEqual([
      { model: 'builtin:resnet18', imageSize: 224, batch: 64 },
      { model: 'builtin:cnnb', imageSize: 32, batch: 128 },
      { model: 'models/x.onnx', imageSize: 96, batch: 8 },
    ]);
  });
  it('names the part it cannot read', () => {
    expect(() => parseThroughputCases('resnet18:224')).toThrow("--throughput-cases: 'resnet18:224' is not model:imageSize:batch (e.g. resnet18:224:64)");
    expect(() => parseThroughputCases('resnet18:224:0')).toThrow(/'resnet18:224:0' is not model:imageSize:batch/);
  });
});
