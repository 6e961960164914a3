#!/usr/bin/env bash
# Builds, on a machine with network access and this checkout, what tools/gpu_bench.sh needs on a GPU
# machine that has no Deno and no network (docs: README "GPU (WebGPU)"; /work/shared/design/gpu.md):
#   .gpu/deno.xz   this machine's Deno binary (the pinned 2.9.6), xz-compressed (~31 MB)
#   .gpu/bench.js  `deno task bench` bundled with TF.js and its webgpu backend (`deno bundle
#                  --platform deno`; ~5 MB; runs with no node_modules, no npm and no network)
#   .gpu/gl/*.deb  Debian's Vulkan and GL loaders (the NVIDIA driver in a container ships its ICD,
#                  not always the loaders), fetched with `apt-get download`
#   .gpu/SOURCE    the commit and date the bundle was built from
# .gpu/ is ignored by git (~37 MB in all). Usage: tools/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu
DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

want="2.9.6"
have=$(deno --version | sed -nE 's/^deno ([0-9.]+).*/\1/p')
[ "$have" = "$want" ] || { echo "tools/gpu_prepare.sh: deno $have on PATH, expected $want (deno.json's pin)" >&2; exit 1; }
command -v xz >/dev/null || { echo "tools/gpu_prepare.sh: xz is missing (apt-get install xz-utils)" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "tools/gpu_prepare.sh: apt-get is missing (the loaders are Debian packages)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/gl"
echo "== Deno binary -> $OUT/deno.xz"
xz -T0 -9 -c "$(command -v deno)" >"$OUT/deno.xz"
echo "== bundle tasks/bench.ts -> $OUT/bench.js"
deno bundle --platform deno -o "$OUT/bench.js" tasks/bench.ts
echo "== Debian Vulkan/GL loaders -> $OUT/gl/"
(cd "$OUT/gl" && apt-get download "${DEBS[@]}" >/dev/null) || {
  echo "tools/gpu_prepare.sh: apt-get download ${DEBS[*]} failed (run apt-get update first?)" >&2
  exit 1
}
{
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) with deno $have"
} >"$OUT/SOURCE"
du -ch "$OUT"/* "$OUT"/gl/* | sed "s/^/  /"
echo "done: copy this checkout (with $OUT/) to the GPU machine and run tools/gpu_bench.sh there"
