/**
 * Test helpers for the native backend's tests: whether it is available here (and why not), and
 * running the same computation on `cpu` and on `native` in one process (data passed as plain
 * arrays, the previously active backend restored afterwards) so results can be compared.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { installGradientFixes } from "../gradient_fixes.ts";
import { tryRegisterNative } from "./register.ts";
import { type Dnnl, loadDnnl } from "./dnnl.ts";

/** Why the native backend cannot be used here, or null when it can. */
export const nativeUnavailable: string | null = tryRegisterNative();
/** True when the native backend is registered and its tests run. */
export const nativeAvailable = nativeUnavailable === null;
if (!nativeAvailable) console.log(`native backend tests skipped: ${nativeUnavailable}`);

/** A test name with the skip reason appended when the native backend is unavailable. */
export const testName = (name: string): string => {
  if (nativeAvailable) return `native: ${name}`;
  const why = nativeUnavailable!.length > 90
    ? `${nativeUnavailable!.slice(0, 90)}…`
    : nativeUnavailable;
  return `native: ${name} (skipped: ${why})`;
};

/** Runs f on a backend (tidied), returns its outputs' values, restores the previous backend. */
export const runOn = async (
  backend: string,
  f: () => tf.Tensor | tf.Tensor[],
): Promise<Float32Array[]> => {
  const prev = tf.getBackend();
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  try {
    installGradientFixes();
    const before = tf.memory().numTensors;
    const outs = tf.tidy(() => [f()].flat());
    const vals = outs.map((t) => Float32Array.from(t.dataSync() as ArrayLike<number>));
    const shapes = outs.map((t) => t.shape.join("x"));
    outs.forEach((t) => t.dispose());
    const after = tf.memory().numTensors;
    if (after !== before) throw new Error(`${backend}: leaked ${after - before} tensors`);
    return Object.assign(vals, { shapes });
  } finally {
    if (prev && prev !== backend) await tf.setBackend(prev);
  }
};

/** Runs f on cpu and on native; returns both results (shapes must agree). */
export const onBoth = async (
  f: () => tf.Tensor | tf.Tensor[],
): Promise<{ cpu: Float32Array[]; native: Float32Array[] }> => {
  const cpu = await runOn("cpu", f);
  const native = await runOn("native", f);
  const sc = (cpu as unknown as { shapes: string[] }).shapes;
  const sn = (native as unknown as { shapes: string[] }).shapes;
  if (sc.join() !== sn.join()) throw new Error(`shapes differ: cpu ${sc} vs native ${sn}`);
  return { cpu, native };
};

/** Deterministic pseudo-random floats in [-1, 1) (a simple LCG: tests need no quality). */
export const randArray = (n: number, seed: number): Float32Array => {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
};

/** Small integers in [-3, 3] (ties and all-negative windows for max-pool), seeded. */
export const randInts = (n: number, seed: number): Float32Array =>
  randArray(n, seed).map((v) => Math.round(v * 3));

/** Bitwise equality (NaN equals NaN, −0 differs from +0). */
export const assertSameBits = (got: Float32Array, want: Float32Array, what: string) => {
  assert.equal(got.length, want.length, what);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) {
    const nan = Number.isNaN(got[i]) && Number.isNaN(want[i]);
    if (!nan && g[i] !== w[i]) {
      assert.fail(`${what}: element ${i}: ${got[i]} (bits ${g[i]}) vs ${want[i]} (bits ${w[i]})`);
    }
  }
};

/**
 * oneDNN for a test file: the loaded library (null when it or the native backend is unavailable),
 * why the file's tests are skipped (or null), and test names with that reason appended.
 */
export const dnnlTests = (
  prefix: string,
): { dnnl: Dnnl | null; skip: string | null; name: (n: string) => string } => {
  const r = nativeAvailable ? loadDnnl() : null;
  const skip = !nativeAvailable ? nativeUnavailable! : r && !r.ok ? r.reason : null;
  return {
    dnnl: r?.ok ? r.dnnl : null,
    skip,
    name: (n) => `${prefix}: ${n}${skip ? ` (skipped: ${skip.slice(0, 90)})` : ""}`,
  };
};
