#!/usr/bin/env node
/** The command line: a thin layer over the library. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { trainCommand } from './commands/train.js';
import { evalCommand } from './commands/eval.js';
import { inspectCommand } from './commands/inspect.js';
import { createCommand } from './commands/create.js';
import { benchCommand } from './commands/bench.js';
import { formatError } from './errors.js';

try {
  await yargs(hideBin(process.argv))
    .scriptName('sff-finetune')
    .command(inspectCommand)
    .command(createCommand)
    .command(benchCommand)
    .command(evalCommand)
    .command(trainCommand)
    .strict()
    .help()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
} catch (e) {
  console.error(formatError(e));
  process.exitCode = 2;
}
