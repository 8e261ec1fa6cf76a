/**
 * Issue 15, "Silent bad numbers": every bad option value is refused before any work, naming the
 * flag (through the CLI, as a user types it) or the library option.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { finetune } from '../../src/train/finetune.js';
import { validateFinetuneOptions } from '../../src/train/validate.js';
import { OptionError } from '../../src/train/options.js';
import { CLI as cli, REPO_ROOT as root, ensureCliBuilt } from '../helpers/cli.js';

const run = promisify(execFile);

/** Runs the CLI; resolves to its exit status and stderr. */
async function sff(args: string[]): Promise<{ status: number; stderr: string }> {
  try {
    const r = await run('node', [cli, ...args], { cwd: root });
    return { status: 0, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    return { status: x.code, stderr: x.stderr };
  }
}

const CASES: [string[], RegExp][] = [
  [['--epochs', '0'], /--epochs must be ≥ 1/],
  [['--epochs', '-1'], /--epochs must be ≥ 1/],
  [['--epochs', '3', '--epochs', '5'], /--epochs was given 2 times \(3, 5\); give it once/],
  [['--epochs', '0.5'], /--epochs must be a whole number of epochs, got 0\.5/],
  [['--lr', 'abc'], /--lr must be a number > 0, got a value that is not a number/],
  [['--lr', '-1'], /--lr must be a number > 0, got -1/],
  [['--batch-size', '0'], /--batch-size must be ≥ 1/],
  [['--aux-kernel', 'abc'], /--aux-kernel must be a whole number ≥ 1 and ≤ 31, got 'abc'/],
  [['--threads=-1'], /--threads must be ≥ 1 and ≤ 1024, got -1/],
  [['--seed', 'abc'], /--seed must be a whole number ≥ 0 .* got a value that is not a number/],
  [['--val-fraction', '0'], /--val-fraction 0 leaves no validation split/],
  [['--val-fraction', '1'], /--val-fraction must be a number > 0 and < 1, got 1/],
  [['--bn-momentum', '2'], /--bn-momentum must be a number > 0 and ≤ 1, got 2/],
  [['--ensemble', 'last:0'], /--ensemble 'last:0' is not understood/],
  [['--normalize', '1,2/3'], /--normalize: /],
  [['--freeze', '7,blockX'], /--freeze: no block named '7', 'blockX'; the model's blocks are 0 block0, 1 block1, 2 block2/],
  [['--resume', 'x', '--overwrite'], /--resume and --overwrite contradict each other/],
];

describe('bad option values through the CLI', () => {
  beforeAll(() => {
    ensureCliBuilt();
  }, 120_000);

  it(`${CASES.length} cases: exit 2, one line naming the flag, nothing written`, async () => {
    const out = mkdtempSync(join(tmpdir(), 'sff-opts-'));
    // A few at a time: each is a short-lived node process.
    for (let i = 0; i < CASES.length; i += 6) {
      const batch = CASES.slice(i, i + 6);
      const results = await Promise.all(batch.map(([flags]) => sff(['builtin:cnnb', '--data', 'builtin:shapes', '--max-steps', '1', '-o', join(out, 'run'), ...flags])));
      results.forEach((r, k) => {
        const [flags, expected] = batch[k]!;
        expect(r.status, flags.join(' ')).toBe(2);
        // One error line, last (the --freeze check follows the model's log line, on stderr too).
        const lines = r.stderr.trim().split('\n');
        expect(lines.at(-1), flags.join(' ')).toMatch(expected);
        expect(lines.filter((l) => l.startsWith('sff-finetune:')), flags.join(' ')).toHaveLength(1);
      });
    }
    expect(readdirSync(out)).toEqual([]);
  }, 120_000);
});

describe('the same validator in the library', () => {
  it('names the library option', async () => {
    await expect(finetune({ model: 'builtin:cnnb', data: 'builtin:shapes', epochs: 0, quiet: true })).rejects.toThrow(/option 'epochs' must be ≥ 1/);
    expect(() => validateFinetuneOptions({ model: 'm', data: 'd', batchSize: 12.5 }, 'library')).toThrow(OptionError);
    expect(() => validateFinetuneOptions({ model: 'm', data: 'd', lr: Number.NaN }, 'library')).toThrow(/option 'lr' must be a number > 0/);
    await expect(finetune({ model: 'builtin:cnnb', data: 'builtin:shapes', freeze: ['nope'], quiet: true, epochs: 1 })).rejects.toThrow(/option 'freeze': no block named 'nope'/);
  });
  it('normalises what it accepts: numeric strings, freeze lists, aux-kernel auto', () => {
    const o = validateFinetuneOptions({ model: 'm', data: 'd', epochs: '3' as unknown as number, freeze: ['0,1', ' 2 '], auxKernel: 'auto' }, 'cli');
    expect(o.epochs).toBe(3);
    expect(o.freeze).toEqual(['0', '1', '2']);
    expect(o.auxKernel).toBeUndefined();
  });
});
