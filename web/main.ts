/// <reference lib="dom" />
/**
 * The browser page: the library's optimizers (MLHF with the shipped meta-weights, Adam, SGD,
 * HF(fixed), …) train one network from one initialization side by side on an MNIST subset, with
 * loss and test-accuracy curves, step times and a few test digits with their predictions.
 *
 * It uses the library's own modules (no copy): models and optimizers through `lib/train`, the step
 * through `lib/train/step.ts`, the meta-weights through `decodeMetaWeights`. Backends: WebGPU,
 * then WebGL, then wasm, then cpu (first that activates; `?backend=NAME` forces one).
 *
 * URL parameters (all optional; the form shows them): `model`, `optimizers` (comma list),
 * `steps`, `batch`, `seed`, `evalEvery`, `backend`, `autostart=1`. `window.mlhfWeb` exposes the
 * state for tests: `{ status, backend, losses, accuracy, stepMs, error }`.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { installGradientFixes } from "../lib/backend/gradient_fixes.ts";
import { decodeMnistSubset, type MnistSubset } from "../lib/data/mnist_subset.ts";
import { decodeMetaWeights, headerOptions } from "../lib/meta/meta_weights_codec.ts";
import { disposeState } from "../lib/optim/base.ts";
import { nonFinitePath } from "../lib/optim/finite.ts";
import { mapMetaWeightKinds } from "../lib/optim/mlhf/kind_map.ts";
import { foldIn, keyFromSeed } from "../lib/prng.ts";
import { linePlot, PALETTE } from "../lib/report/svg_plot.ts";
import { leaves, mapTree, type Params } from "../lib/tree.ts";
import { makeModel, type ModelName } from "../lib/train/models.ts";
import {
  buildOptimizer,
  type BuiltOptimizer,
  DEFAULT_SETTINGS,
  type MetaWeightsSource,
  type OptimizerName,
  type Settings,
} from "../lib/train/optimizers.ts";
import { trainStep } from "../lib/train/step.ts";
import { weightDecayFor } from "../lib/train/weight_decay.ts";
import { kindLeaves } from "../models/types.ts";
import { plain } from "../ops/interpret.ts";
import { softmaxCrossEntropy } from "../ops/losses.ts";
import { importWasmBackend, importWebGpuBackend } from "./deps.ts";

/** The models the page offers. */
const MODELS: Record<string, ModelName> = { mlp: "mlp", "convnet-small": "convnet-small" };
/** The optimizers the page offers, and which of their settings it shows. */
const OPTIMIZERS: readonly { name: OptimizerName; label: string; keys: (keyof Settings)[] }[] = [
  { name: "mlhf", label: "MLHF", keys: ["lr", "cg-iter", "damping"] },
  { name: "adam", label: "Adam", keys: ["lr"] },
  { name: "sgd", label: "SGD", keys: ["lr"] },
  { name: "momentum", label: "Momentum", keys: ["lr", "momentum"] },
  { name: "hf-fixed", label: "HF(fixed)", keys: ["lr", "cg-iter", "damping"] },
];
/** Backends in the order tried. */
const BACKENDS = ["webgpu", "webgl", "wasm", "cpu"] as const;
/** The convnet has no meta-networks of its own: it borrows the dense ones (README "Results"). */
const CONV_KIND_MAP = [["conv2d/kernel", "dense/kernel"], ["conv2d/bias", "dense/bias"]] as const;

/** What tests read. */
interface PageState {
  status: "loading" | "ready" | "running" | "done" | "error";
  backend: string;
  losses: Record<string, number[]>;
  accuracy: Record<string, [number, number][]>;
  stepMs: Record<string, number>;
  error: string | null;
}
const state: PageState = {
  status: "loading",
  backend: "",
  losses: {},
  accuracy: {},
  stepMs: {},
  error: null,
};
(globalThis as unknown as { mlhfWeb: PageState }).mlhfWeb = state;

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html: no element #${id}`);
  return el as T;
};

/** Shows an error in the page (never a blank page) and records it for tests. */
const fail = (what: string, e: unknown): void => {
  const msg = `${what}: ${e instanceof Error ? e.message : String(e)}`;
  state.status = "error";
  state.error = msg;
  const box = $("error");
  box.textContent = msg;
  box.hidden = false;
  document.body.dataset.status = "error";
  ($("start") as HTMLButtonElement).disabled = state.backend === "";
};

const setStatus = (s: PageState["status"], text: string): void => {
  state.status = s;
  document.body.dataset.status = s;
  $("status").textContent = text;
};

// ---- backend ----

/**
 * A product and a reduction read back, as the library reads its losses (asynchronously): a backend
 * that activates but computes or reads wrongly (seen with WebGPU on a software adapter) is skipped.
 */
const selfTest = async (): Promise<string | null> => {
  const t = tf.tidy(() => {
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.tensor2d([1, -1, 2, 0.5, -3, 1], [3, 2]);
    return tf.concat([tf.reshape(tf.matMul(a, b), [4]), tf.reshape(tf.sum(tf.exp(a)), [1])]);
  });
  const got = await t.data();
  t.dispose();
  const want = [-4, 3, -4, 4.5, [1, 2, 3, 4, 5, 6].reduce((s, x) => s + Math.exp(x), 0)];
  const ok = want.every((w, i) => Math.abs(got[i] - w) <= 1e-3 * Math.max(1, Math.abs(w)));
  return ok
    ? null
    : `self-test computed [${[...got]}], expected [${want.map((w) => +w.toFixed(3))}]`;
};

const activate = async (name: typeof BACKENDS[number]): Promise<string | null> => {
  try {
    if (name === "webgpu") {
      if (!("gpu" in navigator)) return "navigator.gpu is absent";
      await importWebGpuBackend();
    }
    if (name === "wasm") {
      const wasm = await importWasmBackend();
      wasm.setWasmPaths(new URL("./wasm/", location.href).href);
    }
    if (!(await tf.setBackend(name))) return `tf.setBackend('${name}') returned false`;
    return await selfTest();
  } catch (e) {
    return e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
};

/** Tries the backends in order (or only `forced`); returns the chosen one and why others failed. */
const chooseBackend = async (forced: string | null): Promise<string> => {
  const order = forced ? BACKENDS.filter((b) => b === forced) : BACKENDS;
  if (!order.length) throw new Error(`?backend=${forced}: expected one of ${BACKENDS.join(", ")}`);
  const skipped: string[] = [];
  for (const name of order) {
    const why = await activate(name);
    if (why === null) {
      installGradientFixes();
      state.backend = name;
      $("backend").textContent = name +
        (skipped.length ? ` (skipped: ${skipped.join("; ")})` : "");
      if (name === "wasm" || name === "cpu") {
        $("backend-note").textContent =
          "No usable WebGPU or WebGL in this browser: training runs on the CPU, slower.";
      }
      return name;
    }
    skipped.push(`${name}: ${why}`);
  }
  throw new Error(`no TF.js backend could be activated (${skipped.join("; ")})`);
};

// ---- data and meta-weights ----

const fetchBytes = async (file: string): Promise<Uint8Array> => {
  const r = await fetch(file);
  if (!r.ok) throw new Error(`${file}: HTTP ${r.status} ${r.statusText} (missing from the site?)`);
  return new Uint8Array(await r.arrayBuffer());
};

const loadMeta = async (file: string): Promise<MetaWeightsSource> => {
  const decoded = decodeMetaWeights(await fetchBytes(file), file);
  const bad = await nonFinitePath(decoded.weights);
  if (bad !== null) throw new Error(`${file}: meta-weight ${bad} is not finite (corrupt file?)`);
  const lr = decoded.header.training?.lr ?? decoded.header.training?.learningRate;
  return {
    weights: decoded.weights,
    options: headerOptions(decoded.header),
    trainedLearningRate: typeof lr === "number" && lr > 0 ? lr : undefined,
    description: file,
  };
};

/** Float images [N, H, W, 1] in [0, 1] and int labels for `count` examples from `start`. */
const batchOf = (
  split: MnistSubset["train"],
  h: number,
  w: number,
  idx: readonly number[],
): { x: tf.Tensor4D; y: tf.Tensor2D; labels: number[] } => {
  const px = h * w;
  const x = new Float32Array(idx.length * px);
  idx.forEach((j, i) => {
    for (let p = 0; p < px; p++) x[i * px + p] = split.pixels[j * px + p] / 255;
  });
  const labels = idx.map((j) => split.labels[j]);
  return {
    x: tf.tensor4d(x, [idx.length, h, w, 1]),
    y: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 10).toFloat()) as tf.Tensor2D,
    labels,
  };
};

/** A seeded permutation of 0..n-1 (mulberry32; the page's own batch order, not the library's). */
const permutation = (n: number, seed: number): number[] => {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
};

// ---- the form ----

interface RunConfig {
  model: ModelName;
  optimizers: { name: OptimizerName; label: string; settings: Settings }[];
  steps: number;
  batch: number;
  seed: number;
  evalEvery: number;
}

const params = new URLSearchParams(location.search);

const buildForm = (meta: MetaWeightsSource | null): void => {
  const wanted = (params.get("optimizers") ?? "mlhf,adam,sgd,hf-fixed").split(",");
  const box = $("optimizers");
  for (const o of OPTIMIZERS) {
    const row = document.createElement("fieldset");
    row.className = "opt";
    const defaults = { ...DEFAULT_SETTINGS[o.name] };
    if (o.name === "mlhf" && meta?.trainedLearningRate) defaults.lr = meta.trainedLearningRate;
    if (o.name === "mlhf" && meta?.options.cgIterations) {
      defaults["cg-iter"] = meta.options.cgIterations;
    }
    if (o.name === "mlhf" && meta?.options.lambda0) defaults.damping = meta.options.lambda0;
    const disabled = o.name === "mlhf" && !meta;
    row.innerHTML =
      `<legend><label><input type="checkbox" name="use" value="${o.name}"${
        wanted.includes(o.name) && !disabled ? " checked" : ""
      }${disabled ? " disabled" : ""}> ${o.label}</label></legend>` +
      o.keys.map((k) =>
        `<label>${k} <input type="number" step="any" data-opt="${o.name}" data-key="${k}" value="${
          defaults[k] ?? ""
        }"></label>`
      ).join(" ");
    box.appendChild(row);
  }
  const set = (id: string, key: string) => {
    const v = params.get(key);
    if (v !== null) ($(id) as HTMLInputElement).value = v;
  };
  set("model", "model");
  set("steps", "steps");
  set("batch", "batch");
  set("seed", "seed");
  set("eval-every", "evalEvery");
};

const readForm = (): RunConfig => {
  const num = (id: string, min: number): number => {
    const v = Number(($(id) as HTMLInputElement).value);
    if (!(Number.isInteger(v) && v >= min)) {
      throw new RangeError(`#${id}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const model = MODELS[($("model") as HTMLSelectElement).value];
  if (!model) throw new RangeError(`model: expected one of ${Object.keys(MODELS).join(", ")}`);
  const optimizers = [...document.querySelectorAll<HTMLInputElement>("input[name=use]:checked")]
    .map((box) => {
      const name = box.value as OptimizerName;
      const settings: Record<string, number> = {};
      for (
        const input of document.querySelectorAll<HTMLInputElement>(`input[data-opt="${name}"]`)
      ) {
        const v = Number(input.value);
        if (input.value === "" || !Number.isFinite(v)) {
          throw new RangeError(`${name} ${input.dataset.key}: not a number (${input.value})`);
        }
        settings[input.dataset.key!] = v;
      }
      return { name, label: name, settings: settings as Settings };
    });
  if (!optimizers.length) throw new RangeError("choose at least one optimizer");
  return {
    model,
    optimizers,
    steps: num("steps", 1),
    batch: num("batch", 1),
    seed: num("seed", 0),
    evalEvery: num("eval-every", 1),
  };
};

// ---- drawing ----

const colorOf = (i: number): string => PALETTE[i % PALETTE.length];

const draw = (cfg: RunConfig): void => {
  const series = (pick: (label: string) => [number, number][]) =>
    cfg.optimizers.map((o, i) => ({ name: o.label, points: pick(o.label), color: colorOf(i) }));
  $("loss-chart").innerHTML = linePlot({
    title: "training loss (batch)",
    xLabel: "step",
    yLabel: "cross-entropy",
    logY: true,
    width: 520,
    height: 320,
    series: series((l) => (state.losses[l] ?? []).map((v, s) => [s + 1, v])),
  });
  $("acc-chart").innerHTML = linePlot({
    title: "test accuracy",
    xLabel: "step",
    yLabel: "accuracy",
    width: 520,
    height: 320,
    yDomain: [0, 1],
    series: series((l) => state.accuracy[l] ?? []),
  });
  $("times").innerHTML =
    "<tr><th>optimizer</th><th>loss</th><th>test acc.</th><th>ms/step</th></tr>" +
    cfg.optimizers.map((o, i) => {
      const ls = state.losses[o.label] ?? [];
      const acc = state.accuracy[o.label]?.at(-1)?.[1];
      return `<tr><td><span class="swatch" style="background:${
        colorOf(i)
      }"></span>${o.label}</td><td>${ls.length ? ls[ls.length - 1].toFixed(4) : "–"}</td><td>${
        acc === undefined ? "–" : (100 * acc).toFixed(1) + "%"
      }</td><td>${state.stepMs[o.label]?.toFixed(1) ?? "–"}</td></tr>`;
    }).join("");
};

/** Draws test digits with each optimizer's prediction. */
const drawDigits = (
  data: MnistSubset,
  shown: number[],
  preds: Record<string, number[]>,
): void => {
  const box = $("digits");
  box.innerHTML = "";
  const { height: h, width: w } = data;
  shown.forEach((j, i) => {
    const cell = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    if (ctx) {
      const img = ctx.createImageData(w, h);
      for (let p = 0; p < w * h; p++) {
        const v = 255 - data.test.pixels[j * w * h + p];
        img.data.set([v, v, v, 255], 4 * p);
      }
      ctx.putImageData(img, 0, 0);
    }
    const truth = data.test.labels[j];
    const cap = document.createElement("figcaption");
    cap.innerHTML = `label ${truth}<br>` +
      Object.entries(preds).map(([label, p]) =>
        `<span class="${p[i] === truth ? "ok" : "wrong"}">${label}: ${p[i]}</span>`
      ).join("<br>");
    cell.append(canvas, cap);
    box.appendChild(cell);
  });
};

// ---- training ----

interface Runner {
  label: string;
  opt: BuiltOptimizer;
  params: Params;
  optState: unknown;
  timeMs: number;
  steps: number;
  dead: string | null;
}

let stopRequested = false;
/**
 * An error from loading the page (the meta-weights), kept shown through every run: a run clears
 * only its own previous error, so an optimizer that could not load never silently goes missing.
 */
let startupError: string | null = null;

const run = async (data: MnistSubset, meta: MetaWeightsSource | null): Promise<void> => {
  const cfg = readForm();
  stopRequested = false;
  state.losses = {};
  state.accuracy = {};
  state.stepMs = {};
  state.error = startupError;
  $("error").textContent = startupError ?? "";
  $("error").hidden = startupError === null;
  ($("start") as HTMLButtonElement).disabled = true;
  ($("stop") as HTMLButtonElement).disabled = false;
  setStatus("running", `training ${cfg.model}…`);
  const { height: h, width: w } = data;
  const model = makeModel(cfg.model, 10);
  const init = model.init(foldIn(keyFromSeed(cfg.seed), 1), [h, w, 1]);
  const kinds = kindLeaves(init.kinds as never);
  const runMeta = meta && cfg.model !== "mlp"
    ? { ...meta, weights: mapMetaWeightKinds(meta.weights, CONV_KIND_MAP) }
    : meta;
  const runners: Runner[] = cfg.optimizers.map((o) => {
    const opt = buildOptimizer(o, {
      kinds,
      weightDecay: weightDecayFor("mnist"),
      meta: runMeta ?? undefined,
      seed: cfg.seed,
    });
    const p = mapTree(init.params, (x) => tf.clone(x));
    state.losses[o.label] = [];
    state.accuracy[o.label] = [];
    return {
      label: o.label,
      opt,
      params: p,
      optState: opt.transform.init(p),
      timeMs: 0,
      steps: 0,
      dead: null,
    };
  });
  tf.dispose(leaves(init.params));
  const testN = Math.min(1000, data.test.labels.length);
  const shown = Array.from({ length: 8 }, (_, i) => Math.floor((i * testN) / 8));
  const evaluate = async (step: number): Promise<void> => {
    const preds: Record<string, number[]> = {};
    for (const r of runners) {
      if (r.dead) continue;
      let correct = 0;
      const picked: number[] = [];
      for (let s = 0; s < testN; s += 500) {
        const idx = Array.from({ length: Math.min(500, testN - s) }, (_, i) => s + i);
        const b = batchOf(data.test, h, w, idx);
        const arg = tf.tidy(() =>
          tf.argMax(model.applyInference(plain, r.params, {} as Params, b.x), -1)
        );
        const a = await arg.data();
        arg.dispose();
        tf.dispose([b.x, b.y]);
        idx.forEach((j, i) => {
          if (a[i] === b.labels[i]) correct++;
          const at = shown.indexOf(j);
          if (at >= 0) picked[at] = a[i];
        });
      }
      state.accuracy[r.label].push([step, correct / testN]);
      preds[r.label] = picked;
    }
    drawDigits(data, shown, preds);
  };
  const n = data.train.labels.length;
  let order = permutation(n, cfg.seed);
  let at = 0;
  try {
    await evaluate(0);
    draw(cfg);
    for (let step = 1; step <= cfg.steps && !stopRequested; step++) {
      if (at + cfg.batch > n) {
        order = permutation(n, cfg.seed + step);
        at = 0;
      }
      const b = batchOf(data.train, h, w, order.slice(at, at += cfg.batch));
      try {
        for (const r of runners) {
          if (r.dead) continue;
          const t0 = performance.now();
          const out = await trainStep({
            model: model.apply,
            lossFn: softmaxCrossEntropy,
            optimizer: r.opt.transform,
            params: r.params,
            state: r.optState,
            batch: { x: b.x, y: b.y },
            key: foldIn(foldIn(keyFromSeed(cfg.seed), 2), step),
          });
          const dt = performance.now() - t0;
          r.params = out.params;
          r.optState = out.state;
          tf.dispose(out.aux);
          if (!Number.isFinite(out.loss)) {
            r.dead = `diverged at step ${step} (loss ${out.loss})`;
            $("notes").textContent += `${r.label}: ${r.dead}. `;
            continue;
          }
          if (step > 1) r.timeMs += dt; // the first step compiles kernels/shaders
          r.steps++;
          state.losses[r.label].push(out.loss);
          state.stepMs[r.label] = r.timeMs / Math.max(1, r.steps - 1);
        }
      } finally {
        tf.dispose([b.x, b.y]);
      }
      if (step % cfg.evalEvery === 0 || step === cfg.steps) await evaluate(step);
      draw(cfg);
      $("progress").textContent = `step ${step} / ${cfg.steps}`;
      await new Promise((r) => setTimeout(r, 0));
    }
    setStatus("done", stopRequested ? "stopped" : `done: ${cfg.steps} steps`);
  } finally {
    for (const r of runners) {
      disposeState(r.optState);
      tf.dispose(leaves(r.params));
    }
    ($("start") as HTMLButtonElement).disabled = false;
    ($("stop") as HTMLButtonElement).disabled = true;
  }
};

const main = async (): Promise<void> => {
  setStatus("loading", "choosing a backend…");
  await chooseBackend(params.get("backend"));
  setStatus("loading", "loading MNIST and the meta-weights…");
  const data = decodeMnistSubset(await fetchBytes("mnist-subset.bin"), "mnist-subset.bin");
  $("data").textContent =
    `${data.train.labels.length} training and ${data.test.labels.length} test images`;
  let meta: MetaWeightsSource | null = null;
  try {
    meta = await loadMeta("mlhf-mnist.mlhf");
    $("meta").textContent = `mlhf-mnist.mlhf (trained with ${JSON.stringify(meta.options)})`;
  } catch (e) {
    fail("MLHF is unavailable: the meta-weights could not be loaded", e);
    startupError = state.error;
    $("meta").textContent = "unavailable";
  }
  buildForm(meta);
  ($("start") as HTMLButtonElement).disabled = false;
  $("start").addEventListener("click", () => {
    run(data, meta).catch((e) => fail("training failed", e));
  });
  $("stop").addEventListener("click", () => {
    stopRequested = true;
  });
  if (state.status !== "error") setStatus("ready", "ready");
  if (params.get("autostart") === "1") $("start").click();
};

globalThis.addEventListener("error", (e) => fail("error", e.error ?? e.message));
globalThis.addEventListener("unhandledrejection", (e) => fail("error", e.reason));
main().catch((e) => fail("the page could not start", e));
