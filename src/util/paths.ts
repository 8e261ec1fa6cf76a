/**
 * Paths the tool writes or reads on behalf of a file it did not author (a model's block names,
 * an external-data `location`): names are sanitised, then the resolved path is checked to stay
 * inside the folder it belongs to, symbolic links included.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

/** A path that would leave the folder it must stay in (the message names both). */
export class PathError extends Error {
  override name = 'PathError';
}

/**
 * A file-name component made from untrusted text: only letters, digits, '.', '_' and '-' survive
 * (runs of anything else become one '_'), no leading dot (hidden files, '.' and '..'), at most 80
 * characters; empty input gives `fallback`.
 */
export function safeFileName(name: string, fallback = 'unnamed'): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 80);
  return cleaned || fallback;
}

/** A model or data argument as a run records it: `builtin:` names as given, paths made absolute. */
export function resolveInput(p: string): string {
  return p.startsWith('builtin:') ? p : resolve(p);
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest (for files not yet written). */
function realpathOfNearest(p: string): string {
  let head = p;
  const tail: string[] = [];
  while (!existsSync(head)) {
    const up = dirname(head);
    if (up === head) break;
    tail.unshift(head.slice(up.length).replace(/^[\\/]+/, ''));
    head = up;
  }
  return resolve(realpathSync(head), ...tail);
}

/**
 * `root` joined with `parts`, checked to stay inside `root` both as written and after following
 * symbolic links. `what` says what the path is for, in the error.
 */
export function pathInside(root: string, parts: string[], what: string): string {
  const base = resolve(root);
  const path = resolve(base, ...parts);
  if (!isInside(base, path)) throw new PathError(`${what} '${parts.join('/')}' resolves to ${path}, outside ${base}; refusing to touch it`);
  if (existsSync(base) && !isInside(realpathOfNearest(base), realpathOfNearest(path)))
    throw new PathError(`${what} '${parts.join('/')}' leads through a symbolic link to ${realpathOfNearest(path)}, outside ${base}; refusing to touch it`);
  return path;
}

/** True when `a` and `b` name the same existing file (hard or symbolic links included) or the same path. */
export function samePath(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
