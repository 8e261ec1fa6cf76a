import { defineConfig } from 'vitest/config';

// Many tests build and run real onnxruntime sessions (ResNet18, MobileNetV3); on a 2-core machine
// with a training run beside the suite, one of them took 5.1 s and failed on vitest's 5 s default.
// Tests that are long by design set their own, longer timeouts; this floor only absorbs load.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
