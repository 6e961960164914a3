#!/usr/bin/env bash
# The webgpu bench rows on a GPU machine with no Deno and no network, in one command (README
# "GPU (WebGPU)"). Needs .gpu/ from tools/gpu_prepare.sh (run where there is network), an NVIDIA
# (or other Vulkan) driver, and xz + dpkg-deb. Usage, from the checkout's root:
#   tools/gpu_bench.sh [FILTER...]        default filters: webgpu/ core/cudaConvnet optim/cudaConvnet meta/
# Environment: OUT (results folder; default runs/gpu-bench-<UTC time>), RUNS (5), WARMUP (1),
# VK_DRIVER_FILES (else the NVIDIA ICD is looked for where drivers put it),
# MLHF_GPU_ALLOW_SOFTWARE=1 (accept a software adapter such as llvmpipe: for trying this script on a
# machine without a GPU). Writes OUT/adapter.txt, OUT/<filter>.json (`deno task bench --json` rows)
# and OUT/bench.log.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.gpu
for f in deno.xz bench.js; do
  [ -f "$G/$f" ] || { echo "tools/gpu_bench.sh: $G/$f is missing: run tools/gpu_prepare.sh first (on a machine with network) and copy $G/ along" >&2; exit 2; }
done
for c in xz dpkg-deb; do
  command -v "$c" >/dev/null || { echo "tools/gpu_bench.sh: $c is missing (Debian: xz-utils, dpkg)" >&2; exit 2; }
done
[ "$#" -gt 0 ] && FILTERS=("$@") || FILTERS=("webgpu/" "core/cudaConvnet" "optim/cudaConvnet" "meta/")
OUT=${OUT:-runs/gpu-bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/mlhf-gpu.XXXXXX")
trap 'rm -rf "$work"' EXIT

xz -dc "$G/deno.xz" >"$work/deno"
chmod +x "$work/deno"
export DENO_DIR="$work/deno_dir" DENO_NO_UPDATE_CHECK=1

# The Vulkan/GL loaders, unpacked privately (no root needed) when the system lacks them.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  ls "$G"/gl/*.deb >/dev/null 2>&1 || { echo "tools/gpu_bench.sh: no libvulkan.so.1 on this machine and no $G/gl/*.deb to unpack" >&2; exit 2; }
  for d in "$G"/gl/*.deb; do dpkg-deb -x "$d" "$work/root"; done
  export LD_LIBRARY_PATH="$work/root/usr/lib/x86_64-linux-gnu:$work/root/usr/lib/aarch64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# The NVIDIA driver's own libraries and its Vulkan ICD / EGL vendor files (container layouts first).
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  if [ -d "$d" ]; then export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"; fi
done
first() { for p in "$@"; do if [ -f "$p" ]; then echo "$p"; return 0; fi; done; return 0; }
: "${VK_DRIVER_FILES:=$(first /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json)}"
: "${__EGL_VENDOR_LIBRARY_FILENAMES:=$(first /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json /etc/glvnd/egl_vendor.d/10_nvidia.json)}"
if [ -n "$VK_DRIVER_FILES" ]; then export VK_DRIVER_FILES; else unset VK_DRIVER_FILES; fi
if [ -n "$__EGL_VENDOR_LIBRARY_FILENAMES" ]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES
else
  unset __EGL_VENDOR_LIBRARY_FILENAMES
fi

{
  echo "bundle: $(tr '\n' ' ' <"$G/SOURCE" 2>/dev/null || echo unknown)"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset} __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-unset}"
  "$work/deno" eval --no-remote --no-npm '
    const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
    if (!a) { console.log("adapter: none"); Deno.exit(3); }
    const i = a.info;
    console.log(`adapter: ${i.description || i.device || i.vendor} (vendor ${i.vendor}, architecture ${i.architecture}); maxStorageBufferBindingSize ${a.limits.maxStorageBufferBindingSize}, maxComputeWorkgroupsPerDimension ${a.limits.maxComputeWorkgroupsPerDimension}`);
    const text = `${i.description} ${i.vendor} ${i.architecture} ${i.device}`;
    if (/llvmpipe|lavapipe|swiftshader|software/i.test(text)) { console.log("software adapter"); Deno.exit(4); }'
} >"$OUT/adapter.txt" 2>&1 || {
  code=$?
  cat "$OUT/adapter.txt"
  if [ "$code" = 4 ] && [ "${MLHF_GPU_ALLOW_SOFTWARE:-0}" = 1 ]; then
    echo "(MLHF_GPU_ALLOW_SOFTWARE=1: going on with the software adapter)"
  else
    echo "tools/gpu_bench.sh: no usable GPU adapter (see above; on NVIDIA set VK_DRIVER_FILES to the driver's nvidia_icd.json)" >&2
    exit 3
  fi
}
cat "$OUT/adapter.txt"

status=0
for f in "${FILTERS[@]}"; do
  name=$(tr -c 'A-Za-z0-9._-' '_' <<<"$f" | sed 's/_*$//')
  echo "== $f" | tee -a "$OUT/bench.log"
  "$work/deno" run -A --no-remote --no-npm "$G/bench.js" --backend webgpu --runs "${RUNS:-5}" \
    --warmup "${WARMUP:-1}" --filter "$f" --json "$OUT/$name.json" 2>&1 | tee -a "$OUT/bench.log" \
    || status=1
done
echo "results: $OUT (adapter.txt, bench.log, one JSON per filter)"
exit "$status"
