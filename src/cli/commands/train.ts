/** `sff-finetune [model] --data DIR …`: the main job. With no arguments, a short built-in demo. */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Argv, CommandModule } from 'yargs';
import { finetune, type FinetuneResult } from '../../train/finetune.js';
import { DEVICE_HELP } from '../../runtime/providers.js';
import type { FinetuneOptions } from '../../train/options.js';
import { optionsFromConfigFile } from '../../train/configFile.js';
import { formatEvent } from '../../train/report.js';
import { NORMALIZE_PRESETS } from '../../data/preprocess.js';
import { validateFinetuneOptions } from '../../train/validate.js';
import { UsageError } from '../errors.js';
import { parsePipeline } from '../../train/pipeline/executor.js';
import { closest } from '../suggest.js';
import { printResult, stderrReporter, verbosityOf, type OutputArgs } from '../output.js';
import { parseImageSize } from '../../import/index.js';

export const DEMO = { model: 'builtin:cnnb', data: 'builtin:shapes', epochs: 3, out: 'artifacts/demo' } as const;

interface TrainArgs extends OutputArgs {
  config?: string;
  'export-heads'?: 'ensemble' | 'all';
  'export-scores'?: 'logits' | 'probabilities';
  'export-dtype'?: 'float32' | 'float16';
  model?: string;
  method?: string;
  data?: string;
  out?: string;
  epochs?: number;
  'batch-size'?: number;
  lr?: number;
  'weight-decay'?: number;
  'bn-momentum'?: number;
  seed?: number;
  threads?: number;
  pipeline?: string;
  device?: string;
  ensemble?: string;
  norm?: string;
  'aux-kernel'?: string;
  'head-pool'?: string;
  blocks?: string;
  freeze?: string;
  normalize?: string;
  augment?: string | boolean;
  subset?: number;
  test?: string;
  'image-size'?: string;
  'val-fraction'?: number;
  split?: string;
  'head-block'?: string;
  'head-init'?: string;
  'pooled-heads'?: number;
  schedule?: string;
  warmup?: number;
  'label-smoothing'?: number;
  'lr-patience'?: number;
  'stop-patience'?: number;
  resume?: string;
  overwrite?: boolean;
  'mem-arena'?: boolean;
  'cache-dir'?: string;
  'max-steps'?: number;
  export?: boolean;
}

function headBlockOption(v: string | undefined): FinetuneOptions['headBlock'] {
  if (v === undefined || v === 'auto') return v;
  if (v === '' || v === 'true' || v === 'on') return true;
  if (v === 'false' || v === 'off') return false;
  throw new UsageError(`--head-block '${v}' is not understood: use on, off or auto`);
}

/** Options from an options file (`--config`), then the flags given, which win. */
export function trainOptions(argv: TrainArgs, file: Partial<FinetuneOptions> = {}): FinetuneOptions {
  const model = argv.model ?? file.model;
  const data = argv.data ?? file.data;
  const demo = !model && !data && !argv.resume;
  if (!demo && !argv.resume && (!model || !data))
    throw new UsageError(model ? 'give the training data with --data DIR (an image folder, CIFAR binaries, IDX files or builtin:shapes)' : 'give a model: sff-finetune model.onnx --data DIR');
  const o: FinetuneOptions = {
    // The demo's folder is throwaway: a second demo replaces the first.
    ...(demo ? { epochs: DEMO.epochs, out: DEMO.out, overwrite: true } : {}),
    ...file,
    // On --resume, model and data come from the checkpoint unless given (empty: not given).
    model: model ?? (argv.resume ? '' : DEMO.model),
    data: data ?? (argv.resume ? '' : DEMO.data),
  };
  const set = <K extends keyof FinetuneOptions>(k: K, v: FinetuneOptions[K] | undefined) => {
    if (v !== undefined) o[k] = v;
  };
  set('method', argv.method as FinetuneOptions['method']);
  set('out', argv.out);
  set('epochs', argv.epochs);
  set('batchSize', argv['batch-size']);
  set('lr', argv.lr);
  set('weightDecay', argv['weight-decay']);
  set('bnMomentum', argv['bn-momentum']);
  set('seed', argv.seed);
  set('threads', argv.threads);
  set('pipeline', argv.pipeline === undefined ? undefined : parsePipeline(argv.pipeline));
  set('device', argv.device);
  set('ensemble', argv.ensemble);
  set('norm', argv.norm as FinetuneOptions['norm']);
  // Raw values (a repeated flag is an array, --aux-kernel a string): the validator names what is wrong.
  set('auxKernel', argv['aux-kernel'] as FinetuneOptions['auxKernel']);
  set('headPool', argv['head-pool'] as FinetuneOptions['headPool']);
  set('blocks', argv.blocks);
  set('freeze', argv.freeze as unknown as string[] | undefined);
  set('normalize', argv.normalize);
  set('augment', argv.augment);
  set('subset', argv.subset);
  set('testData', argv.test);
  // A repeated flag stays an array of strings, for the validator to name.
  const size = argv['image-size'] as string | string[] | undefined;
  set('imageSize', Array.isArray(size) ? (size as unknown as FinetuneOptions['imageSize']) : parseImageSize(size));
  set('valFraction', argv['val-fraction']);
  set('split', argv.split);
  set('headBlock', headBlockOption(argv['head-block']));
  set('headInit', argv['head-init'] as FinetuneOptions['headInit']);
  set('pooledHeads', argv['pooled-heads']);
  set('schedule', argv.schedule as FinetuneOptions['schedule']);
  set('warmup', argv.warmup);
  set('labelSmoothing', argv['label-smoothing']);
  set('lrPatience', argv['lr-patience']);
  set('stopPatience', argv['stop-patience']);
  set('resume', argv.resume);
  set('memArena', argv['mem-arena']);
  set('cacheDir', argv['cache-dir']);
  set('maxStepsPerEpoch', argv['max-steps']);
  if (argv.export === false) o.noExport = true;
  set('exportHeads', argv['export-heads']);
  set('exportScores', argv['export-scores']);
  set('exportDtype', argv['export-dtype']);
  set('overwrite', argv.overwrite);
  return validateFinetuneOptions(o, 'cli');
}

/**
 * Reads `--config FILE`: JSON (a run's config.json, or an object of options) or, by its
 * `.yaml`/`.yml` extension, YAML. Keys are library option names (`batchSize`) or flag names
 * (`batch-size`).
 */
export function readOptionsFile(path: string): Partial<FinetuneOptions> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--config ${path}: cannot read it (${(e as Error).message})`);
  }
  const isYaml = /\.ya?ml$/i.test(path);
  let parsed: unknown;
  try {
    parsed = isYaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    const what = isYaml ? 'YAML' : 'JSON';
    throw new UsageError(`--config ${path}: not valid ${what} (${(e as Error).message.split('\n')[0]}); options files are JSON (such as a run's config.json) or YAML (.yaml, .yml)`);
  }
  return optionsFromConfigFile(camelKeys(parsed), path);
}

/** `batch-size: 64` reads as `batchSize: 64`, so a config file can use the flags' names. */
function camelKeys(parsed: unknown): unknown {
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return parsed;
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]));
}

/** The JSON result of a run (--json). */
export function resultJson(r: FinetuneResult): unknown {
  return {
    out: r.out,
    model: r.modelPath ?? null,
    sidecar: r.sidecarPath ?? null,
    config: r.config,
    best: r.best ?? null,
    exportCheck: r.exportCheck ?? null,
    exportedHeads: r.exportedHeads ?? null,
    latency: r.latency ?? null,
    blocks: r.blocks,
    epochs: r.history.length,
    stoppedEarly: r.stoppedEarly,
    peakRssMB: r.peakRssMB,
    trainableParams: r.trainableParams,
  };
}

/** The other commands, for "did you mean" when a typo lands on the default command. */
export const SUBCOMMANDS = ['inspect', 'create', 'bench', 'eval'];

const G = {
  run: 'Run:',
  train: 'Training:',
  sff: 'SFF blocks and heads:',
  data: 'Data:',
  exp: 'Export:',
  rt: 'Runtime:',
};

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: '$0 [model]',
  describe: 'Fine-tune an ONNX classifier with SFF (no arguments: a 3-epoch demo of the built-in CNNB on built-in shapes)',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', describe: 'model.onnx, or builtin:cnn|cnnb|resnet18|mobilenetv3-small' })
      .option('data', { type: 'string', group: G.run, describe: 'image folder, CIFAR binaries, IDX files, or builtin:shapes' })
      .option('out', { alias: 'o', type: 'string', group: G.run, describe: 'run folder', defaultDescription: 'artifacts/<model>' })
      .option('config', { type: 'string', group: G.run, describe: "options file, JSON (a run's config.json, or {\"lr\": 1e-3, …}) or YAML (.yaml/.yml; keys as options or flags: batch-size: 64); flags given override it" })
      .option('resume', { type: 'string', group: G.run, describe: 'continue the run in this folder from its last finished epoch' })
      .option('overwrite', { type: 'boolean', group: G.run, describe: 'start afresh in a non-empty or finished output folder, replacing its run' })
      .option('method', { type: 'string', group: G.run, choices: ['sff', 'bp', 'cwc'], describe: 'sff, or a baseline: bp (end-to-end backprop), cwc (CwC-mod)', defaultDescription: 'sff' })
      .option('epochs', { type: 'number', group: G.train, describe: 'epochs', defaultDescription: '100' })
      .option('batch-size', { type: 'number', group: G.train, describe: 'images per step', defaultDescription: '128 for inputs ≤ 64 px, else 64' })
      .option('lr', { type: 'number', group: G.train, describe: 'AdamW learning rate', defaultDescription: '1e-3 from scratch; pretrained 3e-5 with the head block, else 3e-4' })
      .option('weight-decay', { type: 'number', group: G.train, describe: 'AdamW weight decay', defaultDescription: '0' })
      .option('bn-momentum', { type: 'number', group: G.train, describe: "BatchNorm running-statistics momentum, PyTorch's convention", defaultDescription: "the graph's own" })
      .option('seed', { type: 'number', group: G.train, describe: 'split, shuffle and init seed', defaultDescription: '0' })
      .option('lr-patience', { type: 'number', group: G.train, describe: 'epochs without validation-loss gain before a block lowers its lr', defaultDescription: '10' })
      .option('stop-patience', { type: 'number', group: G.train, describe: 'epochs without validation-accuracy gain before stopping', defaultDescription: '30' })
      .option('max-steps', { type: 'number', group: G.train, describe: 'at most this many steps per epoch (quick runs)' })
      .option('schedule', { type: 'string', group: G.train, choices: ['plateau', 'cosine'], describe: 'learning-rate shape: per-block ReduceLROnPlateau, or cosine decay to 0 over all steps', defaultDescription: 'plateau' })
      .option('warmup', { type: 'number', group: G.train, describe: 'linear learning-rate warm-up, in epochs (fractions allowed)', defaultDescription: '0' })
      .option('label-smoothing', { type: 'number', group: G.train, describe: 'label smoothing ε of every block loss', defaultDescription: '0' })
      .option('ensemble', { type: 'string', group: G.sff, describe: 'blocks whose scores are combined: all | last:K | weighted | auto', defaultDescription: 'auto: weighted from scratch and with the head block; else last:4 (all for ≤ 4 pretrained blocks)' })
      .option('norm', { type: 'string', group: G.sff, choices: ['auto', 'chain', 'head', 'none'], describe: 'where the per-block LayerNorm sits', defaultDescription: 'auto: chain from scratch, none pretrained' })
      .option('aux-kernel', { type: 'string', group: G.sff, requiresArg: true, describe: 'aux head conv kernel size: a number, or auto', defaultDescription: 'auto: 5 for ≤ 10 classes, else 3' })
      .option('head-pool', { type: 'string', group: G.sff, requiresArg: true, describe: 'a cheaper head: average-pool each block output N×N before its aux conv — off, N, or auto (high-resolution maps down to 8–15 px)', defaultDescription: 'off' })
      .option('blocks', { type: 'string', group: G.sff, describe: 'auto | cuts | comma-separated cut tensors', defaultDescription: 'auto' })
      .option('freeze', { type: 'string', group: G.sff, describe: 'comma-separated block names or indices to run forward only' })
      .option('head-block', { type: 'string', group: G.sff, describe: "on | off | auto: run the pretrained network's own head (up to its classifier) as a final block with a J-way pooled linear goodness head", defaultDescription: 'auto: on for pretrained graphs' })
      .option('head-init', { type: 'string', group: G.sff, choices: ['matched', 'random'], describe: "the head block's J-way map: from the pretrained classifier's rows for the source classes matched to yours on training images, or random", defaultDescription: 'matched' })
      .option('pooled-heads', { type: 'number', group: G.sff, describe: 'the last K blocks score with a pooled linear head instead of the aux conv', defaultDescription: '0' })
      .option('normalize', {
        type: 'string',
        group: G.data,
        describe: `${Object.entries(NORMALIZE_PRESETS).map(([k, v]) => `${k} (${v.note})`).join(', ')}, or 'r,g,b/r,g,b' (mean/std on [0,1])`,
        defaultDescription: "the model's recorded one, else imagenet",
      })
      .option('image-size', { type: 'string', group: G.data, describe: "input size H,W or H", defaultDescription: "the graph's, else its metadata's, else the data's common size, else 224" })
      .option('val-fraction', { type: 'number', group: G.data, describe: 'validation share of the training data', defaultDescription: '0.2' })
      .option('split', { type: 'string', group: G.data, describe: 'train/val/test shares, e.g. 70/15/15: a held-out test split, scored once at the end and never used for a choice' })
      .option('augment', { type: 'string', group: G.data, describe: 'training augmentation preset: none | flip | crop (pad-crop + flip; the bare flag) | rrc (RandomResizedCrop 0.08–1 + flip, as torchvision) | rrc-light (area 0.35–1)', defaultDescription: 'none' })
      .option('subset', { type: 'number', group: G.data, describe: 'train on N random training samples' })
      .option('test', { type: 'string', group: G.data, describe: 'a separate test set, scored once at the end for the exported model (never used for a choice)' })
      .option('cache-dir', { type: 'string', group: G.data, describe: 'decoded-image cache folder', defaultDescription: '~/.cache/sff-finetune' })
      .option('export', { type: 'boolean', group: G.exp, describe: 'write model.onnx and model.json at the end (--no-export skips them)', defaultDescription: 'on' })
      .option('export-heads', { type: 'string', group: G.exp, choices: ['ensemble', 'all'], describe: 'aux heads in model.onnx: those the ensemble uses, or all', defaultDescription: 'ensemble' })
      .option('export-scores', { type: 'string', group: G.exp, choices: ['logits', 'probabilities'], describe: "model.onnx's `scores`: ensemble goodness, or its softmax", defaultDescription: 'logits' })
      .option('export-dtype', { type: 'string', group: G.exp, choices: ['float32', 'float16'], describe: 'weight storage in model.onnx (float16: half the file, float32 arithmetic)', defaultDescription: "the source model's: float16 for a float16 model, else float32" })
      .option('threads', { type: 'number', group: G.rt, describe: 'onnxruntime intra-op threads; with --pipeline, the total over its workers', defaultDescription: 'all cores' })
      .option('pipeline', { type: 'string', group: G.rt, describe: 'auto | off | N: blocks as a pipeline of N worker threads (auto: balanced on measured block costs; not on --device webgpu, whose EP cannot run sessions from several threads)', defaultDescription: 'off' })
      .option('device', { type: 'string', group: G.rt, describe: `${DEVICE_HELP} (webgpu: onnxruntime's bundled WebGPU EP, over Vulkan)`, defaultDescription: 'cpu' })
      .option('mem-arena', { type: 'boolean', group: G.rt, describe: "onnxruntime's per-session CPU memory arena", defaultDescription: 'off (one session per block)' }) as unknown as Argv<TrainArgs>,
  handler: async (argv) => {
    // `sff-finetune evl …` reaches the default command with model 'evl': say which command was meant.
    const command = argv.model && !argv.model.startsWith('builtin:') && !existsSync(argv.model) ? closest(argv.model, SUBCOMMANDS) : undefined;
    if (command) throw new UsageError(`unknown command '${argv.model}': did you mean 'sff-finetune ${command}'? (or give an existing model file)`);
    const file = argv.config ? readOptionsFile(argv.config) : {};
    const verbosity = verbosityOf(argv);
    const stderr = stderrReporter(verbosity);
    const opts = trainOptions(argv, file);
    // The run's summary is its result: stdout (unless --json); everything else goes to stderr.
    opts.onEvent = (e) => (e.type === 'summary' ? undefined : stderr(e));
    const result = await finetuneInterruptibly(opts);
    printResult(argv, resultJson(result), () => formatEvent({ type: 'summary', result }, 'normal').join('\n').replace(/^\n/, ''));
  },
};

/**
 * Runs `finetune` with SIGINT/SIGTERM turned into a clean stop: the first finishes the step in
 * flight, keeps the last checkpoint, exports the best epoch so far and prints the --resume command
 * (exit status 130); a second exits at once (the checkpoint on disk is whole either way: it is
 * written to a temporary file and renamed).
 */
export async function finetuneInterruptibly(opts: FinetuneOptions): Promise<Awaited<ReturnType<typeof finetune>>> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`\n${signal} again: stopping now; the last finished epoch's checkpoint is kept\n`);
      process.exit(130);
    }
    process.stderr.write(`\n${signal}: stopping after this step, then exporting the best epoch so far (press Ctrl-C again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    opts.signal = controller.signal; // set in place: the options stay the validated (CLI-named) object
    const result = await finetune(opts);
    if (result.interrupted) process.exitCode = 130;
    return result;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
