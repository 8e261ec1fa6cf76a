/**
 * Data pipeline: real image datasets in, normalised float32 NCHW minibatches out.
 *
 *   const data = await prepareData({ path, imageSize: [224, 224], channels: 3 });
 *   for await (const b of batches(data.train, { batchSize: 64, shuffle: true, seed, epoch,
 *                                               augment: true, ...data.preprocess })) { … }
 *
 * A batch's buffers are reused: they are valid until the consumer requests the batch
 * after next (see loader.ts).
 */
export { DataError } from './errors.js';
export type { ImageSet, SplitRole } from './imageSet.js';
export { U8ImageSet } from './imageSet.js';
export { prepareData, BUILTIN_SHAPES, DATA_DEFAULTS } from './prepare.js';
export type { DataOptions, PreparedData } from './prepare.js';
export { batches } from './loader.js';
export type { Batch, BatchOptions } from './loader.js';
export { epochOrder, Rng } from '../util/rng.js';
export { parseNormalize, IMAGENET_MEAN, IMAGENET_STD } from './preprocess.js';
export { defaultCacheDir } from './cache.js';
export { SHAPE_CLASSES } from './synthetic.js';
export { FASHION_MNIST_CLASSES } from './formats/idx.js';
export { CIFAR10_CLASSES } from './formats/cifar.js';
