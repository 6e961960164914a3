/**
 * Keeps large allocations inside the process (glibc `mallopt`), so that a fresh large typed array
 * reuses memory the process already touched instead of new pages.
 *
 * V8 allocates an ArrayBuffer's store with `calloc`. glibc serves a request above
 * `M_MMAP_THRESHOLD` (128 KiB at first, raised dynamically up to 32 MiB) with a fresh `mmap`, and
 * gives freed heap tops back to the kernel above `M_TRIM_THRESHOLD`: either way the next large
 * array is new pages, each costing a page fault on first touch. On this project's VMs that is
 * 2–26 µs a page (a fresh 4 MiB array: 0.2–28 ms, median up to 23 ms while the machine was shared;
 * 32 MiB: 170–290 ms), more than the matMul or element-wise kernel that fills it. With both
 * thresholds raised, calloc takes the block from the heap of arrays the GC already freed and
 * clears it (a memset of warm pages: 0.13–0.8 ms for 4 MiB, same run). It matters for every output
 * the recycling of `kernels/_util.ts` cannot reuse: arrays read out (`dataSync`, `data`), the cpu
 * kernels' outputs.
 *
 * The cost: the process keeps up to the trim threshold of freed heap instead of returning it.
 * `MLHF_MALLOPT=0` leaves glibc's defaults. A libc without `mallopt` (musl) is left alone.
 * @module
 */

/** glibc's `M_TRIM_THRESHOLD` and `M_MMAP_THRESHOLD` parameter numbers (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;

/** Requests up to this many bytes come from the heap (glibc caps it at 32 MiB on 64-bit). */
export const MMAP_THRESHOLD_BYTES = 32 << 20;
/** Free heap kept before glibc trims it back to the kernel. */
export const TRIM_THRESHOLD_BYTES = 1 << 30;

let done: string | null = null;

/**
 * Raises glibc's mmap and trim thresholds once per process (idempotent); returns what it did, for
 * messages and tests: "on", "off (MLHF_MALLOPT=0)" or "unavailable (reason)".
 */
export const keepHeapInProcess = (): string => {
  if (done) return done;
  try {
    if (Deno.env.get("MLHF_MALLOPT") === "0") return done = "off (MLHF_MALLOPT=0)";
    const libc = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" },
    });
    const ok = libc.symbols.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1 &&
      libc.symbols.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) === 1;
    done = ok ? "on" : "unavailable (mallopt refused the thresholds)";
  } catch (e) {
    done = `unavailable (${String((e as Error).message).split("\n")[0]})`;
  }
  return done;
};
