#!/usr/bin/env node
/** The command line: a thin layer over the library. Results go to stdout, people's output to stderr (./output.ts). */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { trainCommand } from './commands/train.js';
import { evalCommand } from './commands/eval.js';
import { inspectCommand } from './commands/inspect.js';
import { createCommand } from './commands/create.js';
import { benchCommand } from './commands/bench.js';
import { formatError, UsageError } from './errors.js';
import { closest, withOptionSuggestions } from './suggest.js';
import { SUBCOMMANDS } from './commands/train.js';
import { existsSync } from 'node:fs';
import { versions } from '../runtime/versions.js';

const args = hideBin(process.argv);
const cli = yargs(args);
try {
  await cli
    .scriptName('sff-finetune')
    .command(inspectCommand)
    .command(createCommand)
    .command(benchCommand)
    .command(evalCommand)
    .command(trainCommand)
    .option('json', { type: 'boolean', global: true, describe: 'print the result as one JSON document on stdout (logs stay on stderr)' })
    .option('quiet', { alias: 'q', type: 'boolean', global: true, describe: 'no progress or log on stderr (warnings and errors only)' })
    .option('verbose', { alias: 'v', type: 'boolean', global: true, describe: 'more detail on stderr (per-block build and epoch lines)' })
    .conflicts('quiet', 'verbose')
    .group(['json', 'quiet', 'verbose', 'help', 'version'], 'Output:')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(versions().sffFinetune)
    .alias('version', 'V')
    .wrap(Math.min(120, process.stderr.columns || process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      const known = Object.keys((cli as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key).filter((k) => k.length > 1 && !/[A-Z]/.test(k));
      // A mistyped command lands on the default command as its model: name the command meant.
      const first = args.find((a) => !a.startsWith('-'));
      const command = first && !first.startsWith('builtin:') && !existsSync(first) ? closest(first, SUBCOMMANDS) : undefined;
      const hint = command ? `\nunknown command '${first}': did you mean 'sff-finetune ${command}'?` : '';
      throw new UsageError(`${withOptionSuggestions(msg, known)}${hint}\n(see sff-finetune --help, or sff-finetune <command> --help)`);
    })
    .parseAsync();
} catch (e) {
  console.error(formatError(e));
  process.exitCode = 2;
}
