/** `sff-finetune create <kind> -o FILE`: writes a built-in architecture with random weights. */
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { BUILTIN_MODELS, DEFAULT_IMAGE_SIZE, countParameters, createModel, type BuiltinModel } from '../../models/index.js';
import { saveModel } from '../../onnx/io.js';
import { printResult, type OutputArgs } from '../output.js';

export interface CreateArgs extends OutputArgs {
  kind: BuiltinModel;
  classes: number;
  'image-size'?: number;
  seed: number;
  'fold-bn': boolean;
  out: string;
}

/** Creates and saves the model; returns the absolute path and the parameter count. */
export function runCreate(args: CreateArgs): { path: string; parameters: number } {
  const model = createModel(args.kind, {
    classes: args.classes,
    imageSize: args['image-size'],
    seed: args.seed,
    foldBn: args['fold-bn'],
  });
  const path = resolve(args.out);
  saveModel(model, path);
  return { path, parameters: countParameters(model) };
}

export const createCommand: CommandModule<object, CreateArgs> = {
  command: 'create <kind>',
  describe: 'Write a built-in architecture (cnn, cnnb, resnet18, mobilenetv3-small) with seeded random weights',
  builder: (y: Argv<object>) =>
    y
      .positional('kind', { choices: BUILTIN_MODELS, describe: 'architecture', demandOption: true })
      .option('classes', { type: 'number', default: 10, describe: 'number of output classes' })
      .option('image-size', {
        type: 'number',
        describe: `input height and width (default ${Object.entries(DEFAULT_IMAGE_SIZE).map(([k, v]) => `${k} ${v}`).join(', ')})`,
      })
      .option('seed', { type: 'number', default: 0, describe: 'initialisation seed' })
      .option('fold-bn', { type: 'boolean', default: false, describe: 'fold BatchNorm into the convs (like an eval-mode export)' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'the .onnx file to write' })
      .check((a) => {
        if (!Number.isInteger(a.classes) || a.classes < 1) throw new Error(`--classes must be a positive integer, got ${a.classes}`);
        const s = a['image-size'];
        if (s !== undefined && (!Number.isInteger(s) || s < 4)) throw new Error(`--image-size must be an integer ≥ 4, got ${s}`);
        if (!Number.isSafeInteger(a.seed)) throw new Error(`--seed must be an integer, got ${a.seed}`);
        return true;
      }) as unknown as Argv<CreateArgs>,
  handler: (args) => {
    const { path, parameters } = runCreate(args);
    printResult(args, { path, kind: args.kind, parameters }, () => `${path}\n${args.kind}: ${parameters.toLocaleString('en-US')} parameters`);
  },
};
