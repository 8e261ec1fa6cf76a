/** `sff-finetune eval MODEL --data DIR [--json]`: top-1 accuracy of an exported model. */
import type { Argv, CommandModule } from 'yargs';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { evaluateModel, type EvalReport } from '../../eval/evaluateModel.js';
import { note, printResult, stderrReporter, verbosityOf, type OutputArgs } from '../output.js';
import { DEVICE_HELP } from '../../runtime/providers.js';
import { parseImageSize } from '../../import/index.js';

interface EvalArgs extends OutputArgs {
  out?: string;
  model: string;
  data: string;
  split?: 'test' | 'val' | 'train' | 'all';
  seed?: number;
  shares?: string;
  normalize?: string;
  'image-size'?: string;
  'batch-size'?: number;
  device?: string;
  threads?: number;
}

function evalText(r: EvalReport): string {
  // A test split is a cut only when carved out by a test share (else it is the data's own test set).
  const carved = r.split === 'val' || r.split === 'train' || (r.split === 'test' && r.selection.shares.split('/').length === 3);
  const cut = !carved ? '' : `, cut ${r.selection.shares} seed ${r.selection.seed}${r.selection.from === 'recorded' ? ' as in training' : ''}`;
  const lines = [`${r.model}: top-1 ${(r.accuracy * 100).toFixed(2)}% on ${r.images} images (${r.split} split${cut}, output '${r.output}')`];
  for (const c of r.perClass) lines.push(`  ${c.name.padEnd(20)} ${(c.accuracy * 100).toFixed(1).padStart(5)}%  (${c.count})`);
  if (r.blocks) lines.push(`  per block: ${r.blocks.map((b) => `${b.output.replace('goodness_', '')} ${(b.accuracy * 100).toFixed(1)}%`).join(', ')}`);
  return lines.join('\n');
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <model>',
  describe: 'Top-1 accuracy of an exported model on a dataset',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'an exported model.onnx (or any ONNX classifier)' })
      .option('data', { type: 'string', demandOption: true, describe: 'dataset (same forms as training)' })
      .option('split', { choices: ['test', 'val', 'train', 'all'] as const, describe: 'which images to score', defaultDescription: 'test if the data has one, else val' })
      .option('seed', { type: 'number', describe: 'seed of the train/val(/test) cut', defaultDescription: "the training run's, when --data is the data it trained on, else 0" })
      .option('shares', { type: 'string', describe: 'train/val/test shares of the cut (as train\'s --split, e.g. 70/15/15)', defaultDescription: "the training run's, when --data is the data it trained on, else 80/20" })
      .option('out', { alias: 'o', type: 'string', describe: 'also write the report as JSON to this file' })
      .option('normalize', { type: 'string', describe: "preprocessing of a plain classifier: a preset (imagenet, inception, tf128, none) or 'r,g,b/r,g,b'", defaultDescription: "the model's recorded one, else imagenet" })
      .option('image-size', { type: 'string', describe: 'input size H,W or H (a plain classifier with symbolic height/width; default 224 for RGB)' })
      .option('batch-size', { type: 'number', describe: 'images per run', defaultDescription: '64' })
      .option('device', { type: 'string', describe: DEVICE_HELP, defaultDescription: 'cpu' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads', defaultDescription: 'all cores' }) as unknown as Argv<EvalArgs>,
  handler: async (argv) => {
    const r = await evaluateModel(argv.model, {
      data: argv.data,
      ...(argv.split ? { split: argv.split } : {}),
      ...(argv.seed !== undefined ? { seed: argv.seed } : {}),
      ...(argv.shares ? { shares: argv.shares } : {}),
      ...(argv.normalize ? { normalize: argv.normalize } : {}),
      ...(argv['image-size'] ? { imageSize: parseImageSize(argv['image-size']) } : {}),
      ...(argv['batch-size'] ? { batchSize: argv['batch-size'] } : {}),
      ...(argv.device ? { device: argv.device } : {}),
      ...(argv.threads ? { threads: argv.threads } : {}),
      // Progress (decode, evaluate) on stderr, as in training: stdout keeps only the result.
      onProgress: stderrReporter(verbosityOf(argv)),
    });
    if (argv.out) {
      writeFileSync(resolve(argv.out), JSON.stringify(r, null, 2) + '\n');
      note(argv, `report written to ${resolve(argv.out)}`);
    }
    printResult(argv, r, () => evalText(r));
  },
};
