/** Versions of this package and of the runtimes it drives, recorded in run configs and export sidecars. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import sharp from 'sharp';

export interface Versions {
  sffFinetune: string;
  node: string;
  onnxruntime: string;
  sharp: string;
  platform: string;
}

let cached: Versions | undefined;

/** This package's version, read from its package.json (two folders up from src/runtime or dist/runtime). */
function ownVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function versions(): Versions {
  cached ??= {
    sffFinetune: ownVersion(),
    node: process.versions.node,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    sharp: (sharp.versions as { sharp?: string }).sharp ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
  };
  return cached;
}
