/** One clear line for failures (bad files, options, data); the stack only on request. */
/** A command line that cannot be run as given. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const EXPECTED = new Set(['UsageError', 'LimitError', 'PathError', 'CheckpointError', 'RunFolderError', 'OptionError', 'ModelFileError', 'UnsupportedOpError', 'ImportError', 'DataError', 'DeviceError', 'NonFiniteLossError', 'NoGradientRuleError', 'BlockSpecError', 'YError']);

export function formatError(e: unknown): string {
  if (!(e instanceof Error)) return `sff-finetune: ${String(e)}`;
  if (process.env.SFF_DEBUG) return `sff-finetune: ${e.stack ?? e.message}`;
  const hint = EXPECTED.has(e.name) ? '' : '\n(set SFF_DEBUG=1 for a stack trace)';
  return `sff-finetune: ${e.message}${hint}`;
}
