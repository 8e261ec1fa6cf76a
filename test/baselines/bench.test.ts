/** The bench machinery: suite planning, aggregation into the §6-shaped table, and one throughput measurement in a child process. */
import { describe, expect, it } from 'vitest';
import { buildRows, defaultPaperOptions, paperMarkdown, planPaperRuns, runPaper, stat, summariseRun as summariseFor, type PaperReport, type RunRecord } from '../../src/bench/paper.js';
import { parseSeeds, parseSuites } from '../../src/cli/commands/bench.js';
import { measure, throughputMarkdown } from '../../src/bench/throughput.js';
import type { WorkerResult } from '../../src/bench/train-worker.js';

describe('bench suites', () => {
  it('plans the CIFAR rows (CNN and CNNB × BP, CwC-mod, SFF) per seed, in their own folders', () => {
    const runs = planPaperRuns(defaultPaperOptions({ suites: ['cifar'], seeds: [0, 1], epochs: 3, maxSteps: 7, workDir: '/tmp/w' }));
    expect(runs).toHaveLength(12);
    expect(new Set(runs.map((r) => r.row))).toEqual(new Set(['CIFAR-10, CNN', 'CIFAR-10, CNNB']));
    const r = runs.find((x) => x.id === 'cifar10-cnnb-cwc-s1')!;
    expect(r.options).toMatchObject({ model: 'builtin:cnnb', method: 'cwc', seed: 1, epochs: 3, maxStepsPerEpoch: 7, out: '/tmp/w/cifar10-cnnb-cwc-s1', noExport: true });
    expect(r.options.data).toMatch(/cifar10-train$/);
  });

  it('plans the small-data and transfer rows (transfer: one run per learning-rate candidate)', () => {
    const runs = planPaperRuns(defaultPaperOptions({ suites: ['small', 'transfer'] }));
    expect(runs.filter((r) => r.suite === 'small').map((r) => r.options.subset)).toEqual([1000, 1000, 1000, 1000]);
    const t = runs.filter((r) => r.suite === 'transfer');
    expect(t.map((r) => `${r.method}:${r.lr}`)).toEqual(['bp:0.0001', 'bp:0.00003', 'sff:0.00003', 'sff:0.0003']);
    expect(t[0]!.options.normalize).toBe('0.50196,0.50196,0.50196/0.49804,0.49804,0.49804');
    expect(t[0]!.options.model).toMatch(/mobilenet_v3_large_minimalistic_224_float\.onnx$/);
  });

  it('--jobs starts the most expensive runs first; --bn-momentum reaches every run', async () => {
    const lines: string[] = [];
    const o = defaultPaperOptions({ suites: ['cifar', 'small'], jobs: 2, threads: 1, bnMomentum: 0.1, dryRun: true, log: (l) => lines.push(l) });
    await runPaper(o);
    const order = lines.filter((l) => l.startsWith('[')).map((l) => l.slice(l.indexOf(']') + 2).split(' ')[0]);
    expect(order.slice(0, 2)).toEqual(['cifar10-cnn-sff-s0', 'cifar10-cnnb-sff-s0']);
    expect(order.indexOf('imagenette-1000-mnv3s-sff-s0')).toBeLessThan(order.indexOf('cifar10-cnnb-bp-s0'));
    expect(order.at(-1)).toBe('cifar10-1000-cnnb-bp-s0');
    expect(new Set(order).size).toBe(10);
    expect(lines[0]).toContain('2 at a time');
    const runs = planPaperRuns(o);
    expect(runs.every((r) => r.options.bnMomentum === 0.1)).toBe(true);
  });

  it('parses --seeds and --suite', () => {
    expect(parseSeeds(undefined)).toEqual([0]);
    expect(parseSeeds('3')).toEqual([0, 1, 2]);
    expect(parseSeeds('1,4')).toEqual([1, 4]);
    expect(() => parseSeeds('x')).toThrow(/--seeds/);
    expect(parseSuites('all')).toEqual(['cifar', 'small', 'transfer', 'throughput']);
    expect(() => parseSuites('cifar,nope')).toThrow(/unknown suite 'nope'/);
  });
});

function fakeResult(acc: number, secs: number, extra: Record<string, number> = {}): WorkerResult {
  const epoch = {
    epoch: 1,
    train: { loss: [1], acc: [acc], layers: {} },
    val: { loss: [1], acc: [acc], layers: { all: acc, ...extra } },
    ensemble: { rule: 'all', weights: [1], acc },
    lr: [1e-3],
    seconds: secs + 1,
    trainSeconds: secs,
    steps: 10,
    stepSeconds: secs / 10,
    trainableParams: 100,
    imagesPerSecond: 1280 / secs,
    blockImagesPerSecond: [1],
    peakRssMB: 500,
  };
  return { config: {} as never, history: [epoch], best: epoch, blocks: [], trainableParams: 100, peakRssMB: 500, trainingPeakRssMB: 500, steadyPeakRssMB: 400, buildPeakRssMB: 450, stoppedEarly: false, wallSeconds: secs };
}

describe('bench aggregation', () => {
  it('mean ± std over seeds, time relative to BP, and the best learning rate of a search', () => {
    const rec = (method: 'bp' | 'sff' | 'cwc', seed: number, acc: number, secs: number, lr?: number, extra?: Record<string, number>): RunRecord => {
      const result = fakeResult(acc, secs, extra);
      return { run: { id: `${method}${seed}${lr ?? ''}`, suite: 'transfer', row: 'R', method, seed, ...(lr ? { lr } : {}), options: { model: 'm', data: 'd' } }, ok: true, result, summary: summariseFor(result) };
    };
    const records = [
      rec('bp', 0, 0.8, 10, 1e-4), rec('bp', 1, 0.6, 10, 1e-4),
      rec('bp', 0, 0.5, 10, 3e-5), rec('bp', 1, 0.5, 10, 3e-5),
      rec('sff', 0, 0.75, 5, 1e-3, { weighted: 0.8 }), rec('sff', 1, 0.77, 5, 1e-3, { weighted: 0.8 }),
      rec('cwc', 0, 0.4, 20, undefined, { head: 0.45 }),
    ];
    const [row] = buildRows(records);
    expect(row!.cells.bp!.lr).toBe(1e-4);
    expect(row!.cells.bp!.acc.mean).toBeCloseTo(0.7);
    expect(row!.cells.bp!.acc.std).toBeCloseTo(stat([0.8, 0.6]).std);
    expect(row!.cells.bp!.lrSearch).toEqual([{ lr: 1e-4, acc: expect.closeTo(0.7) }, { lr: 3e-5, acc: 0.5 }]);
    expect(row!.cells.sff!.timeVsBp).toBeCloseTo(0.5);
    expect(row!.cells.cwc!.timeVsBp).toBeCloseTo(2);
    expect(row!.cells.cwc!.headAcc!.mean).toBeCloseTo(0.45);
    expect(row!.cells.sff!.peakRssMB.mean).toBe(400);
    const report: PaperReport = { name: 't', date: 'now', machine: { cpus: 2, cpu: 'x', node: 'v', memoryGB: 1 }, options: defaultPaperOptions(), rows: [row!], runs: records, notes: [] };
    const md = paperMarkdown(report);
    expect(md).toContain('| R | 70.00±14.14 (lr 0.0001) | 40.00 / 45.00 | 76.00±1.41 / 80.00±0.00 (lr 0.001) | 400 (500) / 400 (500) / 400 (500) | 0.50 | 2.00 |');
    expect(md).toContain('lr 0.00003 → 50.00%');
  });
});

describe('throughput measurement', () => {
  it('times the SFF train step of every block and reports memory, in process', async () => {
    const m = await measure({ model: 'builtin:cnnb', imageSize: 16, batch: 8, mode: 'sff', memArena: false, warmup: 1, reps: 2 });
    expect(m.sessions).toBe(3);
    expect(m.msPerSession).toHaveLength(3);
    expect(m.imagesPerSecond).toBeGreaterThan(0);
    expect(m.trainableParams).toBeGreaterThan(100_000);
    expect(m.peakRssMB).toBeGreaterThanOrEqual(m.rssStartMB);
    const bp = await measure({ model: 'builtin:cnnb', imageSize: 16, batch: 8, mode: 'bp', memArena: true, warmup: 1, reps: 2 });
    expect(bp.sessions).toBe(1);
    const md = throughputMarkdown({ machine: { cpus: 2, node: 'v', ort: '1', loadAverage: [1, 1, 1] }, speed: [], memory: [m, bp], profiles: [], seconds: 1 });
    expect(md).toContain('| SFF | off | no | 3 |');
    expect(md).toContain('| BP | on | no | 1 |');
  }, 30_000);
});
