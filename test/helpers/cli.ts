/**
 * The built CLI that tests drive in a child process, as a user runs it (`node dist/cli/main.js`).
 * `npm install` builds dist/ (its prepare step); `ensureCliBuilt` builds it when a test runs first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './shared.js';

export { REPO_ROOT };
export const CLI = join(REPO_ROOT, 'dist/cli/main.js');

/** Builds dist/ if the CLI is absent (`always`: rebuild, so the test drives the current source). */
export function ensureCliBuilt(opts: { always?: boolean; quiet?: boolean } = {}): void {
  if (opts.always || !existsSync(CLI)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: opts.quiet ? 'pipe' : 'inherit' });
}
