/** `sff-finetune [model] --data DIR …`: the main job. With no arguments, a short built-in demo. */
import type { Argv, CommandModule } from 'yargs';
import { finetune } from '../../train/finetune.js';
import type { FinetuneOptions } from '../../train/options.js';
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
  augment?: string | boolean;
  subset?: number;
  test?: string;
  'image-size'?: number;
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
  'mem-arena'?: boolean;
  'cache-dir'?: string;
  'max-steps'?: number;
  export?: boolean;
  json?: boolean;
}

function headBlockOption(v: string | undefined): FinetuneOptions['headBlock'] {
  if (v === undefined || v === 'auto') return v;
  if (v === '' || v === 'true' || v === 'on') return true;
  if (v === 'false' || v === 'off') return false;
  throw new UsageError(`--head-block '${v}' is not understood: use on, off or auto`);
}

export function trainOptions(argv: TrainArgs): FinetuneOptions {
  const demo = !argv.model && !argv.data && !argv.resume;
  if (!demo && !argv.resume && (!argv.model || !argv.data))
    throw new UsageError(argv.model ? 'give the training data with --data DIR (an image folder, CIFAR binaries, IDX files or builtin:shapes)' : 'give a model: sff-finetune model.onnx --data DIR');
  const aux = argv['aux-kernel'];
  const o: FinetuneOptions = {
    model: argv.model ?? DEMO.model,
    data: argv.data ?? DEMO.data,
    ...(demo ? { epochs: DEMO.epochs, out: DEMO.out } : {}),
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
  set('auxKernel', aux === undefined || aux === 'auto' ? undefined : Number(aux));
  set('blocks', argv.blocks);
  set('freeze', argv.freeze ? argv.freeze.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  set('normalize', argv.normalize);
  set('augment', argv.augment);
  set('subset', argv.subset);
  set('testData', argv.test);
  set('imageSize', argv['image-size']);
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
  return o;
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
      .option('augment', { type: 'string', describe: 'training augmentation preset: none | flip | crop (pad-crop + flip; the bare flag) | rrc (RandomResizedCrop 0.08–1 + flip, as torchvision) | rrc-light (area 0.35–1)' })
      .option('subset', { type: 'number', describe: 'train on N random training samples' })
      .option('test', { type: 'string', describe: 'a separate test set, scored once at the end for the exported model (never used for a choice)' })
      .option('image-size', { type: 'number', describe: 'input size when the model does not fix it' })
      .option('val-fraction', { type: 'number', describe: 'validation share of the training data (default 0.2)' })
      .option('split', { type: 'string', describe: 'train/val/test shares, e.g. 70/15/15: a held-out test split, scored once at the end and never used for a choice' })
      .option('head-block', { type: 'string', describe: "on | off | auto: run the pretrained network's own head (up to its classifier) as a final block with a J-way pooled linear goodness head (auto: off)" })
      .option('head-init', { type: 'string', choices: ['matched', 'random'], describe: "head block's J-way map: matched (default) starts from the pretrained classifier's rows for the source classes matched to yours on training images; random" })
      .option('pooled-heads', { type: 'number', describe: 'the last K blocks score with a pooled linear head instead of the aux conv (default 0)' })
      .option('schedule', { type: 'string', choices: ['plateau', 'cosine'], describe: 'learning-rate shape: plateau (per-block ReduceLROnPlateau, default) or cosine decay to 0 over all steps' })
      .option('warmup', { type: 'number', describe: 'linear learning-rate warm-up, in epochs (fractions allowed; default 0)' })
      .option('label-smoothing', { type: 'number', describe: 'label smoothing ε of every block loss (default 0)' })
      .option('lr-patience', { type: 'number', describe: 'ReduceLROnPlateau patience per block (default 10)' })
      .option('stop-patience', { type: 'number', describe: 'early-stopping patience (default 30)' })
      .option('resume', { type: 'string', describe: 'continue the run in this output folder from its last finished epoch' })
      .option('mem-arena', { type: 'boolean', describe: "onnxruntime's per-session CPU memory arena (default off: one session per block)" })
      .option('cache-dir', { type: 'string', describe: 'decoded-image cache folder' })
      .option('max-steps', { type: 'number', describe: 'at most this many steps per epoch (quick runs)' })
      .option('export', { type: 'boolean', describe: 'export model.onnx at the end (default; --no-export skips it)' })
      .option('json', { type: 'boolean', describe: 'print the final result as JSON' }) as unknown as Argv<TrainArgs>,
  handler: async (argv) => {
    const result = await finetune(trainOptions(argv));
    if (argv.json) console.log(JSON.stringify({ out: result.out, model: result.modelPath, best: result.best, exportCheck: result.exportCheck, blocks: result.blocks }, null, 2));
  },
};
