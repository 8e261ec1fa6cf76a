/**
 * Issue 15, "Silent bad data": labels checked against the class count for IDX as for CIFAR,
 * symbolic-link cycles and duplicate files detected, a class with no readable image is an error,
 * warnings for an empty split or a class with very few images.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DataError, prepareData } from '../../src/data/index.js';
import { idx } from '../data/helpers.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sff-baddata-'));

function idxSet(labels: number[]): string {
  const dir = tmp();
  const n = labels.length;
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idx([n, 8, 8], Uint8Array.from({ length: n * 64 }, (_, k) => k & 255)));
  fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idx([n], Uint8Array.from(labels)));
  return dir;
}

async function png(shade: number): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 8, channels: 3, background: { r: shade, g: 255 - shade, b: 40 } } }).png().toBuffer();
}

/** PATH/<class>/<k>.png with `perClass` distinct images per class. */
async function tree(classes: string[], perClass: number): Promise<string> {
  const dir = tmp();
  for (const [c, name] of classes.entries()) {
    fs.mkdirSync(path.join(dir, name));
    for (let k = 0; k < perClass; k++) fs.writeFileSync(path.join(dir, name, `${k}.png`), await png((c * 50 + k * 7) % 256));
  }
  return dir;
}

const opts = (p: string) => ({ path: p, imageSize: [8, 8] as [number, number], channels: 3, noCache: true, normalize: 'none' });

describe('IDX labels against the class count', () => {
  it('a label byte of 255 among 0..9 is refused (not "256 classes")', async () => {
    const labels = Array.from({ length: 40 }, (_, i) => i % 10);
    labels[17] = 255;
    const dir = idxSet(labels);
    await expect(prepareData({ ...opts(dir), channels: 1 })).rejects.toThrow(
      /train-labels-idx1-ubyte: sample 17 has label 255, but 245 of the labels 0\.\.255 never occur: the labels file is corrupt/,
    );
  });
  it('labels 0..11 that all occur make 12 classes', async () => {
    const d = await prepareData({ ...opts(idxSet(Array.from({ length: 48 }, (_, i) => i % 12))), channels: 1 });
    expect(d.classes).toHaveLength(12);
  });
});

describe('image trees', () => {
  it('a symbolic-link cycle is refused, naming the link', async () => {
    const dir = await tree(['cat', 'dog'], 4);
    fs.symlinkSync(dir, path.join(dir, 'cat', 'loop'));
    const err = await prepareData(opts(dir)).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(new RegExp(`${path.join(dir, 'cat', 'loop')}: symbolic link back to .*a folder that contains it \\(a cycle\\)`));
  });
  it('a file reached twice in one class is counted once, with a warning', async () => {
    const dir = await tree(['cat', 'dog'], 6);
    fs.mkdirSync(path.join(dir, 'cat', 'more'));
    fs.symlinkSync(path.join(dir, 'cat', '0.png'), path.join(dir, 'cat', 'more', 'again.png'));
    const d = await prepareData({ ...opts(dir), valFraction: 0.25 });
    expect(d.train.count + d.val.count).toBe(12);
    expect(d.warnings.join('\n')).toMatch(/1 image file reached twice through links, counted once: .*again\.png \(= .*cat\/0\.png\)/);
  });
  it('one file in two classes is an error (one image, two labels)', async () => {
    const dir = await tree(['cat', 'dog'], 4);
    fs.symlinkSync(path.join(dir, 'cat', '1.png'), path.join(dir, 'dog', 'x.png'));
    await expect(prepareData(opts(dir))).rejects.toThrow(/dog\/x\.png is the same file as .*cat\/1\.png, but one is in class "dog" and the other in "cat"/);
  });
  it('train/ and val/ sharing files through links are caught', async () => {
    const dir = tmp();
    fs.renameSync(await tree(['a', 'b'], 5), path.join(dir, 'train'));
    fs.mkdirSync(path.join(dir, 'val'));
    fs.mkdirSync(path.join(dir, 'val', 'a'));
    fs.writeFileSync(path.join(dir, 'val', 'a', 'own.png'), await png(77));
    fs.symlinkSync(path.join(dir, 'train', 'a', '0.png'), path.join(dir, 'val', 'a', 'leak.png'));
    fs.mkdirSync(path.join(dir, 'val', 'b'));
    fs.writeFileSync(path.join(dir, 'val', 'b', 'own.png'), await png(99));
    const d = await prepareData(opts(dir));
    expect(d.test!.count).toBe(2);
    expect(d.warnings.join('\n')).toMatch(/1 image file reached twice through links, counted once: .*val\/a\/leak\.png/);
    // A val/ class that is nothing but a link to train/'s is refused.
    fs.rmSync(path.join(dir, 'val', 'b'), { recursive: true });
    fs.symlinkSync(path.join(dir, 'train', 'b'), path.join(dir, 'val', 'b'));
    await expect(prepareData(opts(dir))).rejects.toThrow(/val\/b: every image here is the same file as one listed before .*a split that repeats another measures nothing/);
  });
  it('a class whose files are all unreadable is an error naming the class and a reason', async () => {
    const dir = await tree(['cat', 'dog', 'eel'], 4);
    for (const f of fs.readdirSync(path.join(dir, 'dog'))) fs.writeFileSync(path.join(dir, 'dog', f), 'not a png');
    await expect(prepareData(opts(dir))).rejects.toThrow(/class "dog": none of its 4 images could be read \(e\.g\. .*dog\/0\.png: .*\)\. Replace the damaged files or remove the class folder/);
  });
  it('warns about a class with fewer than 5 training images and an empty validation split', async () => {
    const dir = await tree(['a', 'b'], 3);
    const d = await prepareData({ ...opts(dir), valFraction: 0.01 });
    const w = d.warnings.join('\n');
    expect(w).toMatch(/2 classes have fewer than 5 training images: "a" \(3\), "b" \(3\)/);
    expect(d.val.count === 0 ? w : 'the validation split is empty').toMatch(/the validation split is empty/);
  });
});
