export { scopePath } from './scopes.js';
export type { Block, TrainBlock } from './block.js';
export { splitIntoBlocks, splitIntoBlocksDetailed, bodyCuts, BlockSpecError, type SplitBlock, type BlockSpec, type SplitMethod, type SplitResult } from './split.js';
