/** `sff-finetune [model] --data DIR …`: the main job. With no arguments, a short built-in demo. */
import type { Argv, CommandModule } from 'yargs';
import { finetune } from '../../train/finetune.js';
import type { FinetuneOptions } from '../../train/options.js';
import { validateFinetuneOptions } from '../../train/validate.js';
import { UsageError } from '../errors.js';

export const DEMO = { model: 'builtin:cnnb', data: 'builtin:shapes', epochs: 3, out: 'artifacts/demo' } as const;

interface TrainArgs {
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
  device?: string;
  ensemble?: string;
  norm?: string;
  'aux-kernel'?: string;
  blocks?: string;
  freeze?: string;
  normalize?: string;
  augment?: boolean;
  subset?: number;
  test?: string;
  'image-size'?: number;
  'val-fraction'?: number;
  'lr-patience'?: number;
  'stop-patience'?: number;
  resume?: string;
  overwrite?: boolean;
  'mem-arena'?: boolean;
  'cache-dir'?: string;
  'max-steps'?: number;
  export?: boolean;
  json?: boolean;
}

export function trainOptions(argv: TrainArgs): FinetuneOptions {
  const demo = !argv.model && !argv.data && !argv.resume;
  if (!demo && !argv.resume && (!argv.model || !argv.data))
    throw new UsageError(argv.model ? 'give the training data with --data DIR (an image folder, CIFAR binaries, IDX files or builtin:shapes)' : 'give a model: sff-finetune model.onnx --data DIR');
  const o: FinetuneOptions = {
    // On --resume, model and data come from the checkpoint unless given (empty: not given).
    model: argv.model ?? (argv.resume ? '' : DEMO.model),
    data: argv.data ?? (argv.resume ? '' : DEMO.data),
    // The demo's folder is throwaway: a second demo replaces the first.
    ...(demo ? { epochs: DEMO.epochs, out: DEMO.out, overwrite: true } : {}),
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
  set('device', argv.device);
  set('ensemble', argv.ensemble);
  set('norm', argv.norm as FinetuneOptions['norm']);
  // Raw values (a repeated flag is an array, --aux-kernel a string): the validator names what is wrong.
  set('auxKernel', argv['aux-kernel'] as FinetuneOptions['auxKernel']);
  set('blocks', argv.blocks);
  set('freeze', argv.freeze as unknown as string[] | undefined);
  set('normalize', argv.normalize);
  set('augment', argv.augment);
  set('subset', argv.subset);
  set('testData', argv.test);
  set('imageSize', argv['image-size']);
  set('valFraction', argv['val-fraction']);
  set('lrPatience', argv['lr-patience']);
  set('stopPatience', argv['stop-patience']);
  set('resume', argv.resume);
  set('overwrite', argv.overwrite);
  set('memArena', argv['mem-arena']);
  set('cacheDir', argv['cache-dir']);
  set('maxStepsPerEpoch', argv['max-steps']);
  if (argv.export === false) o.noExport = true;
  return validateFinetuneOptions(o, 'cli');
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: '$0 [model]',
  describe: 'Fine-tune an ONNX classifier with SFF (no arguments: a 3-epoch demo of the built-in CNNB on built-in shapes)',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', describe: 'model.onnx, or builtin:cnn|cnnb|resnet18|mobilenetv3-small' })
      .option('data', { type: 'string', describe: 'image folder, CIFAR binaries, IDX files, or builtin:shapes' })
      .option('method', { type: 'string', choices: ['sff', 'bp', 'cwc'], describe: 'sff (default); bp (end-to-end backpropagation) or cwc (CwC-mod): the paper\'s baselines' })
      .option('out', { alias: 'o', type: 'string', describe: 'output folder (default artifacts/<model>)' })
      .option('epochs', { type: 'number', describe: 'epochs (default 100; early stopping after 30 without improvement)' })
      .option('batch-size', { type: 'number', describe: 'default 128 for inputs ≤ 64 px, else 64' })
      .option('lr', { type: 'number', describe: 'AdamW learning rate (default 1e-3 from scratch, 3e-4 for pretrained graphs)' })
      .option('weight-decay', { type: 'number', describe: 'AdamW weight decay (default 0)' })
      .option('bn-momentum', { type: 'number', describe: "BatchNorm running-statistics momentum, PyTorch's convention (default: the graph's own)" })
      .option('seed', { type: 'number', describe: 'split, shuffle and init seed (default 0)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('device', { type: 'string', describe: 'cpu | cuda | cuda:<id>' })
      .option('ensemble', { type: 'string', describe: 'all | last:K | weighted | auto (default: all from scratch, last:4 for pretrained graphs)' })
      .option('norm', { type: 'string', choices: ['auto', 'chain', 'head', 'none'], describe: 'where the per-block LayerNorm sits (auto: chain from scratch, none for pretrained)' })
      .option('aux-kernel', { type: 'string', describe: 'aux conv kernel size (auto: 5 for ≤ 10 classes, else 3)' })
      .option('blocks', { type: 'string', describe: 'auto | cuts | comma-separated cut tensors' })
      .option('freeze', { type: 'string', describe: 'comma-separated block names or indices to run forward only' })
      .option('normalize', { type: 'string', describe: "imagenet | none | 'r,g,b/r,g,b' (mean/std of RGB in [0,1])" })
      .option('augment', { type: 'boolean', describe: 'random crop with padding and horizontal flip (training split)' })
      .option('subset', { type: 'number', describe: 'train on N random training samples' })
      .option('test', { type: 'string', describe: 'a separate test set to report on' })
      .option('image-size', { type: 'number', describe: 'input size when the model does not fix it' })
      .option('val-fraction', { type: 'number', describe: 'validation share of the training data (default 0.2)' })
      .option('lr-patience', { type: 'number', describe: 'ReduceLROnPlateau patience per block (default 10)' })
      .option('stop-patience', { type: 'number', describe: 'early-stopping patience (default 30)' })
      .option('resume', { type: 'string', describe: 'continue the run in this output folder from its last finished epoch' })
      .option('overwrite', { type: 'boolean', describe: 'start afresh in a non-empty or finished output folder, replacing its run' })
      .option('mem-arena', { type: 'boolean', describe: "onnxruntime's per-session CPU memory arena (default off: one session per block)" })
      .option('cache-dir', { type: 'string', describe: 'decoded-image cache folder' })
      .option('max-steps', { type: 'number', describe: 'at most this many steps per epoch (quick runs)' })
      .option('export', { type: 'boolean', describe: 'export model.onnx at the end (default; --no-export skips it)' })
      .option('json', { type: 'boolean', describe: 'print the final result as JSON' }) as unknown as Argv<TrainArgs>,
  handler: async (argv) => {
    const result = await finetuneInterruptibly(trainOptions(argv));
    if (argv.json) console.log(JSON.stringify({ out: result.out, model: result.modelPath, best: result.best, exportCheck: result.exportCheck, blocks: result.blocks }, null, 2));
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
