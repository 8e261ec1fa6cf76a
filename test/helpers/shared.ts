/**
 * Paths to the read-only shared material (../shared beside the repository, or $SFF_SHARED) and
 * the torchvision fixtures (made by `/usr/bin/python3 scripts/export_torchvision.py`), with flags
 * for `describe.skipIf(...)` and a clear warning when they are absent.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED_DIR = process.env.SFF_SHARED ? resolve(process.env.SFF_SHARED) : resolve(REPO_ROOT, '../shared');
export const SHARED_MOBILENET = join(SHARED_DIR, 'models/mobilenet_v3_large_minimalistic_224_float.onnx');
export const hasShared = existsSync(SHARED_MOBILENET);

export const TORCHVISION_DIR = join(REPO_ROOT, 'fixtures/torchvision');
/** A torchvision fixture path, e.g. torchvision('resnet18_eval_op13'). */
export const torchvision = (name: string): string => join(TORCHVISION_DIR, `${name}.onnx`);
export const TORCHVISION_FIXTURES = [
  'resnet18_eval_op13', 'resnet18_eval_op17', 'resnet18_train_op13', 'resnet18_train_op17',
  'mobilenet_v3_small_eval_op13', 'mobilenet_v3_small_eval_op17', 'mobilenet_v3_small_train_op13', 'mobilenet_v3_small_train_op17',
  'resnet18_eval_op17_c10', 'mobilenet_v3_small_eval_op17_c10', 'squeezenet1_1_eval_op13',
] as const;
export const hasTorchvision = TORCHVISION_FIXTURES.every((f) => existsSync(torchvision(f)));

export const CORPUS_DIR = join(REPO_ROOT, 'fixtures/corpus');
/** The corpus of real PyTorch exports (scripts/export_corpus.py, then dist/corpus/derive.js). */
export const hasCorpus = existsSync(join(CORPUS_DIR, 'manifest.json'));

const warned = new Set<string>();
/** Prints (once per file and reason) why a group of tests is skipped. */
export function warnSkip(file: string, what: 'shared' | 'torchvision' | 'corpus'): void {
  const present = what === 'shared' ? hasShared : what === 'corpus' ? hasCorpus : hasTorchvision;
  if (present || warned.has(`${file}:${what}`)) return;
  warned.add(`${file}:${what}`);
  console.warn(
    what === 'shared'
      ? `${file}: tests on the shared MobileNetV3 skipped — ${SHARED_MOBILENET} not found (set SFF_SHARED to the shared folder)`
      : what === 'corpus'
      ? `${file}: corpus tests skipped — no ${join(CORPUS_DIR, 'manifest.json')} (PyTorch absent?); with Debian's python3-torch and python3-torchvision run: ` +
        `/usr/bin/python3 scripts/export_corpus.py --ci && npx tsc -p tsconfig.json && node dist/corpus/derive.js`
      : `${file}: torchvision tests skipped — fixtures missing in ${TORCHVISION_DIR}; run: /usr/bin/python3 scripts/export_torchvision.py`,
  );
}
