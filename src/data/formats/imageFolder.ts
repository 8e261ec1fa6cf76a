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

/** Image files under `dir`, recursively, in sorted order. */
function imageFiles(dir: string, out: string[] = []): string[] {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !isHidden(e.name));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory() || (e.isSymbolicLink() && isDir(full))) imageFiles(full, out);
    else if (IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push(full);
  }
  return out;
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
  dir: string, opts: { classes?: string[]; limitPerClass?: number } = {},
): { classes: string[]; part: FilePart } {
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
    let list = imageFiles(path.join(abs, name));
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
  return { classes, part: { kind: 'files', files, labels: Int32Array.from(labels), origin: abs } };
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
    const tr = listClassTree(layout.train, opts);
    const src: LoadedSource = { format: 'image folder', classes: tr.classes, train: tr.part, location: abs };
    if (layout.test) src.test = listClassTree(layout.test, { classes: tr.classes, limitPerClass: opts.limitPerClass }).part;
    return src;
  }
  const tr = listClassTree(abs, opts);
  return { format: 'image folder', classes: tr.classes, train: tr.part, location: abs };
}
