/** `sff-finetune eval MODEL --data DIR [--json]`: top-1 accuracy of an exported model. */
import type { Argv, CommandModule } from 'yargs';
import { evaluateModel } from '../../eval/evaluateModel.js';

interface EvalArgs {
  model: string;
  data: string;
  split?: 'test' | 'val' | 'train' | 'all';
  seed?: number;
  shares?: string;
  normalize?: string;
  'image-size'?: number;
  'batch-size'?: number;
  device?: string;
  threads?: number;
  json?: boolean;
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <model>',
  describe: 'Top-1 accuracy of an exported model on a dataset',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', demandOption: true })
      .option('data', { type: 'string', demandOption: true, describe: 'dataset (same forms as training)' })
      .option('split', { choices: ['test', 'val', 'train', 'all'] as const, describe: 'default: test if the data has one, else val (80/20 by --seed)' })
      .option('shares', { type: 'string', describe: "the train/val/test shares of training's --split (e.g. 70/15/15): --split test then scores the same held-out images" })
      .option('seed', { type: 'number', describe: 'seed of the train/val cut (default 0, as in training)' })
      .option('normalize', { type: 'string', describe: 'override the preprocessing of a plain classifier' })
      .option('image-size', { type: 'number' })
      .option('batch-size', { type: 'number' })
      .option('device', { type: 'string' })
      .option('threads', { type: 'number' })
      .option('json', { type: 'boolean' }) as unknown as Argv<EvalArgs>,
  handler: async (argv) => {
    const r = await evaluateModel(argv.model, {
      data: argv.data,
      ...(argv.split ? { split: argv.split } : {}),
      ...(argv.seed !== undefined ? { seed: argv.seed } : {}),
      ...(argv.shares ? { shares: argv.shares } : {}),
      ...(argv.normalize ? { normalize: argv.normalize } : {}),
      ...(argv['image-size'] ? { imageSize: argv['image-size'] } : {}),
      ...(argv['batch-size'] ? { batchSize: argv['batch-size'] } : {}),
      ...(argv.device ? { device: argv.device } : {}),
      ...(argv.threads ? { threads: argv.threads } : {}),
    });
    if (argv.json) {
      console.log(JSON.stringify(r, null, 2));
      return;
    }
    console.log(`${r.model}: top-1 ${(r.accuracy * 100).toFixed(2)}% on ${r.images} images (${r.split} split, output '${r.output}')`);
    for (const c of r.perClass) console.log(`  ${c.name.padEnd(20)} ${(c.accuracy * 100).toFixed(1).padStart(5)}%  (${c.count})`);
    if (r.blocks) console.log(`  per block: ${r.blocks.map((b) => `${b.output.replace('goodness_', '')} ${(b.accuracy * 100).toFixed(1)}%`).join(', ')}`);
  },
};
