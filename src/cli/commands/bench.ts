/** `sff-finetune bench`: the paper's measurements (its Tables 2–4) on this machine. */
import type { Argv, CommandModule } from 'yargs';
import { join, resolve } from 'node:path';
import { note, printResult, type OutputArgs } from '../output.js';
import { defaultPaperOptions, runPaper, SUITES, type Suite } from '../../bench/paper.js';
import type { Method } from '../../train/options.js';
import type { ThroughputCase } from '../../bench/throughput.js';
import { DEVICE_HELP, parseDevice } from '../../runtime/providers.js';

interface BenchArgs extends OutputArgs {
  suite: string;
  epochs?: number;
  seeds?: string;
  'data-cifar'?: string;
  'data-imagenette'?: string;
  'transfer-model'?: string;
  'transfer-lr-bp'?: string;
  'transfer-lr-sff'?: string;
  name?: string;
  'max-steps'?: number;
  methods?: string;
  'results-dir'?: string;
  'work-dir'?: string;
  resume?: boolean;
  'mem-arena'?: boolean;
  threads?: number;
  jobs?: number;
  'bn-momentum'?: number;
  'dry-run'?: boolean;
  device?: string;
  'throughput-cases'?: string;
}

/** "resnet18:224:64,cnnb:32:128" → throughput cases (model, image size, batch). */
export function parseThroughputCases(s: string): ThroughputCase[] {
  return s.split(',').map((part) => {
    const [model, size, batch] = part.trim().split(':');
    const n = [Number(size), Number(batch)];
    if (!model || !n.every((v) => Number.isInteger(v) && v > 0))
      throw new Error(`--throughput-cases: '${part}' is not model:imageSize:batch (e.g. resnet18:224:64)`);
    return { model: model.includes('/') || model.endsWith('.onnx') || model.startsWith('builtin:') ? model : `builtin:${model}`, imageSize: n[0]!, batch: n[1]! };
  });
}

/** "0,1,2" → [0,1,2]; a single N → seeds 0…N−1. */
export function parseSeeds(s: string | undefined): number[] {
  if (s === undefined || s === '') return [0];
  const parts = String(s).split(',').map((p) => p.trim()).filter(Boolean).map(Number);
  if (parts.some((p) => !Number.isInteger(p) || p < 0)) throw new Error(`--seeds: give a count N or a comma-separated list of seeds, got '${s}'`);
  return parts.length === 1 && !String(s).includes(',') ? Array.from({ length: parts[0]! }, (_, i) => i) : parts;
}

export function parseSuites(s: string): Suite[] {
  const parts = s.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.includes('all')) return [...SUITES];
  for (const p of parts) if (!(SUITES as readonly string[]).includes(p)) throw new Error(`--suite: unknown suite '${p}' (use ${SUITES.join('|')}|all)`);
  return parts as Suite[];
}

const numbers = (s: string | undefined, fallback: number[]) => (s ? s.split(',').map((x) => Number(x.trim())) : fallback);

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench',
  describe: 'Measure BP vs CwC-mod vs SFF (accuracy, peak memory, time, params) and train-step throughput; writes bench/results/<name>.json and .md',
  builder: (y: Argv) =>
    y
      .option('suite', { type: 'string', default: 'cifar', describe: 'cifar | small | transfer | throughput | all (comma-separated allowed)' })
      .option('epochs', { type: 'number', describe: 'epochs per training run (default 20)' })
      .option('seeds', { type: 'string', describe: 'a count N (seeds 0…N−1) or a list such as 0,1,2 (default 1)' })
      .option('data-cifar', { type: 'string', describe: 'CIFAR-10 image folder (default ../shared/data/cifar10-train)' })
      .option('data-imagenette', { type: 'string', describe: 'Imagenette image folder (default ../shared/data/imagenette-train-3000)' })
      .option('transfer-model', { type: 'string', describe: 'ImageNet-pretrained model for the transfer row (default ../shared/models/mobilenet_v3_large_minimalistic_224_float.onnx)' })
      .option('transfer-lr-bp', { type: 'string', describe: 'learning rates searched for BP in the transfer row (default 1e-4,3e-5)' })
      .option('transfer-lr-sff', { type: 'string', describe: 'learning rates searched for SFF in the transfer row (default 3e-5,3e-4)' })
      .option('name', { type: 'string', describe: 'results name: bench/results/<name>.json and .md (default: the suite)' })
      .option('max-steps', { type: 'number', describe: 'at most this many steps per epoch (quick runs)' })
      .option('methods', { type: 'string', describe: 'only these methods (comma-separated: bp,cwc,sff)' })
      .option('results-dir', { type: 'string', describe: 'results folder (default bench/results)' })
      .option('work-dir', { type: 'string', describe: 'run folders and logs (default artifacts/bench/<name>)' })
      .option('resume', { type: 'boolean', describe: 'reuse runs already finished in the work folder' })
      .option('mem-arena', { type: 'boolean', describe: "onnxruntime's CPU memory arena in the training runs (default: the trainer's)" })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads per run' })
      .option('jobs', { type: 'number', describe: 'training runs at once, each with cores/jobs onnxruntime threads (default 1)' })
      .option('bn-momentum', { type: 'number', describe: "BatchNorm running-statistics momentum for every run (PyTorch's convention; default: each graph's own)" })
      .option('dry-run', { type: 'boolean', describe: 'list the planned runs only' })
      .option('device', { type: 'string', describe: `${DEVICE_HELP}: the execution provider of every run and throughput measurement (default cpu)` })
      .option('throughput-cases', { type: 'string', describe: 'throughput suite cases as model:imageSize:batch, comma-separated (default resnet18:224:32,mobilenetv3-small:224:32,cnnb:32:128)' }) as unknown as Argv<BenchArgs>,
  handler: async (argv) => {
    const suites = parseSuites(argv.suite);
    const name = argv.name ?? (argv.suite.includes(',') ? suites.join('-') : argv.suite);
    const d = defaultPaperOptions({ name });
    const methods = argv.methods ? (argv.methods.split(',').map((m) => m.trim()) as Method[]) : undefined;
    if (methods?.some((m) => !['bp', 'cwc', 'sff'].includes(m))) throw new Error(`--methods: use bp, cwc, sff; got '${argv.methods}'`);
    const report = await runPaper({
      ...d,
      log: (line) => note(argv, line),
      suites,
      ...(argv.epochs !== undefined ? { epochs: argv.epochs } : {}),
      seeds: parseSeeds(argv.seeds),
      ...(argv['data-cifar'] ? { dataCifar: resolve(argv['data-cifar']) } : {}),
      ...(argv['data-imagenette'] ? { dataImagenette: resolve(argv['data-imagenette']) } : {}),
      ...(argv['transfer-model'] ? { transferModel: resolve(argv['transfer-model']) } : {}),
      transferLr: { bp: numbers(argv['transfer-lr-bp'], d.transferLr.bp), sff: numbers(argv['transfer-lr-sff'], d.transferLr.sff) },
      ...(argv['max-steps'] ? { maxSteps: argv['max-steps'] } : {}),
      ...(methods ? { methods } : {}),
      ...(argv['results-dir'] ? { resultsDir: resolve(argv['results-dir']) } : {}),
      ...(argv['work-dir'] ? { workDir: resolve(argv['work-dir']) } : {}),
      ...(argv.resume ? { resume: true } : {}),
      ...(argv['mem-arena'] !== undefined ? { memArena: argv['mem-arena'] } : {}),
      ...(argv.threads ? { threads: argv.threads } : {}),
      ...(argv.jobs ? { jobs: argv.jobs } : {}),
      ...(argv['bn-momentum'] !== undefined ? { bnMomentum: argv['bn-momentum'] } : {}),
      ...(argv['dry-run'] ? { dryRun: true } : {}),
      ...(argv.device ? { device: parseDevice(argv.device) && argv.device } : {}),
      ...(argv['throughput-cases'] ? { throughputCases: parseThroughputCases(argv['throughput-cases']) } : {}),
    });
    const resultsDir = argv['results-dir'] ? resolve(argv['results-dir']) : d.resultsDir;
    printResult(argv, report, () => (argv['dry-run'] ? 'dry run: nothing measured' : `${join(resultsDir, `${name}.json`)}\n${join(resultsDir, `${name}.md`)}`));
  },
};
