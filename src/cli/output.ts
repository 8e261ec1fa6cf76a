/**
 * The CLI's two streams: results on stdout (one JSON document with --json, else short text),
 * everything for people (progress, logs, warnings) on stderr, silenced by --quiet and detailed
 * by --verbose. Every command reads these three global flags through here.
 */
import { createReporter, type Verbosity } from '../train/report.js';

export interface OutputArgs {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export function verbosityOf(a: OutputArgs): Verbosity {
  return a.quiet ? 'quiet' : a.verbose ? 'verbose' : 'normal';
}

/** The command's result: `value` as JSON with --json, else `human()` as text. */
export function printResult(a: OutputArgs, value: unknown, human: () => string): void {
  process.stdout.write(a.json ? JSON.stringify(value, null, 2) + '\n' : human().replace(/\n?$/, '\n'));
}

/** A line for people (stderr), unless --quiet. */
export function note(a: OutputArgs, line: string): void {
  if (!a.quiet) process.stderr.write(line + '\n');
}

/**
 * The renderer of a command's events on stderr (bar on a terminal, plain lines elsewhere).
 * SFF_PROGRESS_SECONDS: seconds between plain progress lines when stderr is not a terminal (default 10).
 */
export function stderrReporter(verbosity: Verbosity): ReturnType<typeof createReporter> {
  const interval = Number(process.env.SFF_PROGRESS_SECONDS);
  return createReporter({ stream: process.stderr, verbosity, ...(Number.isFinite(interval) && interval >= 0 ? { plainInterval: interval } : {}) });
}
