/** Stage planning: the balanced plan is the best contiguous split (checked against brute force). */
import { describe, expect, it } from 'vitest';
import { amdahlCost, balanceStages, evenStages, formatPlan, predictSpeedup, type StagePlan } from '../../../src/train/pipeline/plan.js';

/** Every split of `blocks` into `workers` contiguous stages and `threads` over them (each ≥ 1). */
function allPlans(blocks: number, workers: number, threads: number): StagePlan[][] {
  const out: StagePlan[][] = [];
  const rec = (first: number, left: number, t: number, acc: StagePlan[]) => {
    if (left === 0) {
      if (first === blocks && t === 0) out.push(acc);
      return;
    }
    for (let last = first; last <= blocks - left; last++) for (let k = 1; k <= t - (left - 1); k++) rec(last + 1, left - 1, t - k, [...acc, { first, last, threads: k }]);
  };
  rec(0, workers, threads, []);
  return out;
}

describe('balanceStages', () => {
  const ms = [40, 7, 13, 22, 5, 30];
  const cost = amdahlCost(ms, 1, [0.9, 0.2, 0.5, 0.95, 0.1, 0.7]);
  const slowest = (p: StagePlan[]) => Math.max(...p.map((s) => s.ms ?? [...Array(s.last - s.first + 1)].reduce((a, _, i) => a + cost(s.first + i, s.threads), 0)));

  it.each([
    [2, 2],
    [2, 4],
    [3, 5],
    [4, 8],
  ])('matches brute force for %i workers on %i threads', (workers, threads) => {
    const plan = balanceStages(ms.length, workers, threads, cost);
    const best = Math.min(...allPlans(ms.length, workers, threads).map(slowest));
    expect(slowest(plan)).toBeCloseTo(best, 9);
    expect(plan).toHaveLength(workers);
    expect(plan[0]!.first).toBe(0);
    expect(plan.at(-1)!.last).toBe(ms.length - 1);
    plan.slice(1).forEach((s, i) => expect(s.first).toBe(plan[i]!.last + 1));
    expect(plan.reduce((a, s) => a + s.threads, 0)).toBe(threads);
  });

  it('puts a dominant block alone and gives it the spare threads', () => {
    const plan = balanceStages(4, 2, 4, amdahlCost([100, 10, 10, 10], 1, 0.9));
    expect(plan.map((s) => [s.first, s.last])).toEqual([
      [0, 0],
      [1, 3],
    ]);
    expect(plan[0]!.threads).toBeGreaterThan(plan[1]!.threads);
  });

  it('predicts the speed-up over running every block on all threads', () => {
    const c = amdahlCost([10, 10], 1, 0.5);
    const plan = balanceStages(2, 2, 2, c);
    // Serial on 2 threads: 2 × 10 × (0.5 + 0.25) = 15 ms; pipelined: 10 ms per stage.
    expect(predictSpeedup(plan, c, 2)).toEqual({ pipelinedMs: 10, serialMs: 15, speedup: 1.5 });
  });

  it('refuses impossible splits with a message naming the limits', () => {
    expect(() => balanceStages(3, 4, 4, cost)).toThrow(/3 blocks over 4 pipeline workers: use 1 to 3/);
    expect(() => balanceStages(3, 3, 2, cost)).toThrow(/3 pipeline workers need at least 3 threads/);
  });
});

describe('evenStages and formatPlan', () => {
  it('splits blocks and threads as evenly as possible and prints stage → blocks, threads', () => {
    const plan = evenStages(5, 2, 3);
    expect(plan).toEqual([
      { first: 0, last: 2, threads: 2 },
      { first: 3, last: 4, threads: 1 },
    ]);
    expect(formatPlan([{ ...plan[0]!, ms: 12.34 }, plan[1]!], ['a', 'b', 'c', 'd', 'e'])).toEqual([
      '  stage 0 → blocks 0–2 (a … c), 2 threads, ≈12.3 ms/step',
      '  stage 1 → blocks 3–4 (d … e), 1 thread',
    ]);
  });
});

describe('--pipeline values', () => {
  it('reads auto, off and a worker count, and names the flag on anything else', async () => {
    const { parsePipeline } = await import('../../../src/train/pipeline/executor.js');
    expect(parsePipeline(undefined)).toBe('off');
    expect(parsePipeline('off')).toBe('off');
    expect(parsePipeline('auto')).toBe('auto');
    expect(parsePipeline('3')).toBe(3);
    for (const bad of ['0', '-1', '1.5', 'two']) expect(() => parsePipeline(bad)).toThrow(/--pipeline must be auto, off or a number of workers ≥ 1, got/);
  });

  it('runs serially where auto has room for one worker only, and refuses more workers than blocks', async () => {
    const { pipelineWorkers } = await import('../../../src/train/pipeline/executor.js');
    expect(pipelineWorkers('off', 5, 8)).toBeUndefined();
    expect(pipelineWorkers('auto', 5, 1)).toBeUndefined();
    expect(pipelineWorkers('auto', 1, 8)).toBeUndefined();
    expect(pipelineWorkers('auto', 5, 3)).toBe(3);
    expect(pipelineWorkers('auto', 2, 8)).toBe(2);
    expect(pipelineWorkers(2, 5, 1)).toBe(2);
    expect(() => pipelineWorkers(4, 3, 8)).toThrow('--pipeline 4: this run has 3 blocks, so at most 3 pipeline workers');
  });
});

describe('--pipeline in an options file', () => {
  it("is read from a run's config.json runtime choices and checked like the flag", async () => {
    const { optionsFromConfigFile } = await import('../../../src/train/configFile.js');
    const file = (pipeline: unknown) => ({ format: 'sff-finetune/run-config@1', options: { model: 'm.onnx', data: 'd' }, runtime: { device: 'cpu', threads: 2, pipeline, memArena: false, cacheDir: null, noExport: false } });
    expect(optionsFromConfigFile(file(2), 'config.json').pipeline).toBe(2);
    expect(optionsFromConfigFile(file('auto'), 'config.json').pipeline).toBe('auto');
    expect(optionsFromConfigFile({ pipeline: 'off' }, 'o.json').pipeline).toBe('off');
    expect(() => optionsFromConfigFile(file('many'), 'config.json')).toThrow(/--pipeline must be auto, off or a number of workers ≥ 1, got 'many'/);
  });
});
