/**
 * Image-folder trees: PATH/<class>/…/*.jpg (class = sub-folder name, classes sorted), and
 * the Imagenette layout PATH/train/<class>/… with PATH/val/<class>/… (or PATH/test/…) as
 * the source's own test split.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataError } from '../errors.js';
import type { FilePart, LoadedSource } from '../source.js';

export const IMAGE_EXTENSIONS = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif',
]);

const isHidden = (name: string): boolean => name.startsWith('.');

function subdirs(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !isHidden(e.name) && (e.isDirectory() || (e.isSymbolicLink() && isDir(path.join(dir, e.name)))))
    .map((e) => e.name)
    .sort();
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * What a walk of one class tree has seen, by real path: folders on the current path (a symbolic
 * link back to one of them is a cycle) and every file listed so far (a file reached twice, through
 * links or two links to one folder, would otherwise be counted twice and land in both splits).
 */
export interface TreeWalk {
  /** Real path of each file listed so far → the path it was first listed under, and its class. */
  files: Map<string, { path: string; label: number }>;
  /** Same-class duplicates skipped (the first listing kept). */
  duplicates: { path: string; first: string }[];
}

export function newTreeWalk(): TreeWalk {
  return { files: new Map(), duplicates: [] };
}

function realpathOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** Image files under `dir`, recursively, in sorted order; symbolic-link cycles refused. */
function imageFiles(dir: string, out: string[] = []): string[] {
  const here = realpathOrSelf(dir);
  const entries = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !isHidden(e.name));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory() || (e.isSymbolicLink() && isDir(full))) {
      // A link to this folder or to one that contains it would be walked without end.
      const real = realpathOrSelf(full);
      const rel = path.relative(real, here);
      if (!rel.startsWith('..') && !path.isAbsolute(rel))
        throw new DataError(
          `${full}: symbolic link back to ${real}, a folder that contains it (a cycle); the tree would list the same images ` +
          'again and again. Remove the link or point it elsewhere.',
        );
      imageFiles(full, out);
    } else if (IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push(full);
  }
  return out;
}

/**
 * Keeps the first listing of each real file: a second listing in the same class is recorded in
 * `walk.duplicates` and dropped; one in another class is an error (one image, two labels).
 */
function dedupe(list: string[], label: number, className: (l: number) => string, walk: TreeWalk): string[] {
  const kept: string[] = [];
  for (const f of list) {
    const real = realpathOrSelf(f);
    const first = walk.files.get(real);
    if (!first) {
      walk.files.set(real, { path: f, label });
      kept.push(f);
    } else if (first.label === label) walk.duplicates.push({ path: f, first: first.path });
    else
      throw new DataError(
        `${f} is the same file as ${first.path}, but one is in class "${className(label)}" and the other in "${className(first.label)}". ` +
        'An image cannot have two labels: remove one of them.',
      );
  }
  return kept;
}

/** True when `dir` looks like a class tree: it has at least one non-hidden sub-folder. */
export function looksLikeClassTree(dir: string): boolean {
  return isDir(dir) && subdirs(dir).length > 0;
}

/**
 * Lists a class tree. With `classes` given, folder names must be among them (labels follow
 * that list); otherwise the sorted folder names are the classes.
 */
export function listClassTree(
  dir: string, opts: { classes?: string[]; limitPerClass?: number; walk?: TreeWalk } = {},
): { classes: string[]; part: FilePart; duplicates: TreeWalk['duplicates'] } {
  const walk = opts.walk ?? newTreeWalk();
  const abs = path.resolve(dir);
  const names = subdirs(abs);
  if (names.length === 0) {
    throw new DataError(
      `${abs}: no class sub-folders found. An image-folder dataset needs one sub-folder per class ` +
      `(e.g. ${path.join(abs, 'cat', '0001.jpg')}).`,
    );
  }
  const classes = opts.classes ?? names;
  const index = new Map(classes.map((c, i) => [c, i]));
  const files: string[] = [];
  const labels: number[] = [];
  for (const name of names) {
    const label = index.get(name);
    if (label === undefined) {
      throw new DataError(
        `${path.join(abs, name)}: class "${name}" is not one of the training classes ` +
        `(${classes.join(', ')}). Rename or remove this folder.`,
      );
    }
    const listed = imageFiles(path.join(abs, name));
    let list = dedupe(listed, label, (l) => classes[l] ?? String(l), walk);
    if (list.length === 0 && listed.length > 0) {
      throw new DataError(
        `${path.join(abs, name)}: every image here is the same file as one listed before (e.g. ${listed[0]} = ` +
        `${walk.files.get(realpathOrSelf(listed[0]!))!.path}), through links; a split that repeats another measures nothing. ` +
        'Give this folder its own images or remove it.',
      );
    }
    if (list.length === 0) {
      throw new DataError(
        `${path.join(abs, name)}: class folder is empty (no ${[...IMAGE_EXTENSIONS].join('/')} files). ` +
        `Add images to it or remove the folder.`,
      );
    }
    if (opts.limitPerClass !== undefined && opts.limitPerClass > 0) list = list.slice(0, opts.limitPerClass);
    for (const f of list) {
      files.push(f);
      labels.push(label);
    }
  }
  return { classes, part: { kind: 'files', files, labels: Int32Array.from(labels), origin: abs }, duplicates: walk.duplicates };
}

/** Finds the split sub-trees of an Imagenette-style root, or null for a plain class tree. */
export function splitLayout(root: string): { train: string; test?: string } | null {
  const train = path.join(root, 'train');
  if (!looksLikeClassTree(train)) return null;
  for (const t of ['val', 'test']) {
    const p = path.join(root, t);
    if (looksLikeClassTree(p)) return { train, test: p };
  }
  return { train };
}

export function loadImageFolder(root: string, opts: { limitPerClass?: number } = {}): LoadedSource {
  const abs = path.resolve(root);
  const layout = splitLayout(abs);
  if (layout) {
    // One walk over both splits: a file in train/ and in val/ (through links) is a duplicate too.
    const walk = newTreeWalk();
    const tr = listClassTree(layout.train, { ...opts, walk });
    const src: LoadedSource = { format: 'image folder', classes: tr.classes, train: tr.part, location: abs };
    if (layout.test) src.test = listClassTree(layout.test, { classes: tr.classes, limitPerClass: opts.limitPerClass, walk }).part;
    src.warnings = duplicateWarnings(walk.duplicates);
    return src;
  }
  const tr = listClassTree(abs, opts);
  return { format: 'image folder', classes: tr.classes, train: tr.part, location: abs, warnings: duplicateWarnings(tr.duplicates) };
}

function duplicateWarnings(dups: TreeWalk['duplicates']): string[] {
  if (!dups.length) return [];
  const shown = dups.slice(0, 3).map((d) => `${d.path} (= ${d.first})`).join(', ');
  return [`${dups.length} image file${dups.length > 1 ? 's' : ''} reached twice through links, counted once: ${shown}${dups.length > 3 ? ', …' : ''}`];
}
