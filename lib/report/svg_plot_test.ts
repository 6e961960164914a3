import { assert } from "../../tests/_util/deps.ts";
import {
  escapeXml,
  formatTick,
  linePlot,
  logTicks,
  niceTicks,
  PALETTE,
  plotGrid,
} from "./svg_plot.ts";

/**
 * A minimal well-formedness check: tags balance and nest, attributes are quoted and unique, text
 * and attribute values hold no raw `<` and only known entities. Returns the elements in document
 * order with their attributes and direct text.
 */
const parseXml = (xml: string) => {
  const elements: { name: string; attrs: Record<string, string>; text: string }[] = [];
  const stack: { name: string; el: (typeof elements)[number] }[] = [];
  const entity = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  let i = 0, roots = 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (entity.test(text)) throw new Error(`bad entity in text near ${i}`);
    if (text.trim() && !stack.length) throw new Error(`text outside the root near ${i}`);
    if (stack.length) stack[stack.length - 1].el.text += text;
    if (lt < 0) break;
    const gt = xml.indexOf(">", lt);
    if (gt < 0) throw new Error(`unclosed tag at ${lt}`);
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith("?") || tag.startsWith("!--")) continue;
    if (tag.startsWith("/")) {
      const open = stack.pop();
      if (!open || open.name !== tag.slice(1).trim()) {
        throw new Error(`</${tag.slice(1)}> closes <${open?.name}> at ${lt}`);
      }
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const m = /^([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*\/?$/.exec(tag);
    if (!m) throw new Error(`malformed tag <${tag.slice(0, 60)}> at ${lt}`);
    const attrs: Record<string, string> = {};
    for (const [, k, v] of m[2].matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (k in attrs) throw new Error(`duplicate attribute ${k} in <${m[1]}>`);
      if (entity.test(v)) throw new Error(`bad entity in ${k}="${v}"`);
      attrs[k] = v;
    }
    const el = { name: m[1], attrs, text: "" };
    elements.push(el);
    if (!stack.length) roots++;
    if (!selfClosing) stack.push({ name: m[1], el });
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return elements;
};
const unescape = (s: string) =>
  s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'").replaceAll("&amp;", "&");

const curve = (n: number, f: (i: number) => number): [number, number][] =>
  Array.from({ length: n }, (_, i) => [i * 10, f(i)]);

Deno.test("xml checker: rejects what it should", () => {
  assert.throws(() => parseXml("<a><b></a></b>"), /closes/);
  assert.throws(() => parseXml("<a x=1/>"), /malformed/);
  assert.throws(() => parseXml("<a>x & y</a>"), /bad entity/);
  assert.throws(() => parseXml("<a/><b/>"), /2 root/);
  assert.throws(() => parseXml("<a>"), /unclosed/);
  assert.equal(parseXml('<a k="&amp;"><b/>t</a>').length, 2);
});

Deno.test("linePlot: series paths, labels, legend and title are present and well-formed", () => {
  const svg = linePlot({
    title: "Loss <train> & test",
    xLabel: "step",
    yLabel: "loss",
    series: [
      { name: "SGD", points: curve(50, (i) => 2 * Math.exp(-i / 20) + 0.1) },
      { name: 'MLHF "ours"', points: curve(50, (i) => 2 * Math.exp(-i / 8) + 0.05) },
    ],
  });
  const els = parseXml(svg);
  assert.equal(els[0].name, "svg");
  assert.equal(els[0].attrs.xmlns, "http://www.w3.org/2000/svg");
  const paths = els.filter((e) => e.name === "path");
  assert.deepEqual(paths.map((p) => unescape(p.attrs["data-series"])), ["SGD", 'MLHF "ours"']);
  assert.deepEqual(paths.map((p) => p.attrs.stroke), [PALETTE[0], PALETTE[1]]);
  for (const p of paths) assert.equal(p.attrs.d.match(/[ML]/g)!.length, 50);
  const texts = els.filter((e) => e.name === "text").map((e) => unescape(e.text));
  for (const t of ["Loss <train> & test", "step", "loss", "SGD", 'MLHF "ours"']) {
    assert.ok(texts.includes(t), `text "${t}" in ${JSON.stringify(texts)}`);
  }
  // Ticks increase, cover the data, and are labelled.
  for (const axis of ["x-tick", "y-tick"]) {
    const ticks = els.filter((e) => e.attrs.class === `tick ${axis}`);
    const values = ticks.map((e) => Number(e.attrs["data-value"]));
    assert.ok(values.length >= 3, `${axis}: ${values}`);
    assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]), `${axis} monotone: ${values}`);
    assert.deepEqual(ticks.map((e) => e.text), values.map(formatTick));
  }
  const xs = els.filter((e) => e.attrs.class === "tick x-tick").map((e) =>
    Number(e.attrs["data-value"])
  );
  assert.ok(xs[0] <= 0 && xs[xs.length - 1] >= 490);
  // Tick positions increase along x and decrease (upwards) along y.
  const xPos = els.filter((e) => e.attrs.class === "tick x-tick").map((e) => Number(e.attrs.x));
  const yPos = els.filter((e) => e.attrs.class === "tick y-tick").map((e) => Number(e.attrs.y));
  assert.ok(xPos.every((v, i) => i === 0 || v > xPos[i - 1]));
  assert.ok(yPos.every((v, i) => i === 0 || v < yPos[i - 1]));
});

Deno.test("linePlot: non-finite points are skipped and break the line", () => {
  const svg = linePlot({
    xLabel: "s",
    yLabel: "y",
    series: [{ name: "a", points: [[0, 1], [1, NaN], [2, 3], [3, 4], [Infinity, 5], [5, 6]] }],
  });
  const d = parseXml(svg).find((e) => e.name === "path")!.attrs.d;
  assert.ok(!/NaN|Infinity/.test(svg));
  // [0,1] alone (a dot), then [2,3]-[3,4], then [5,6] alone.
  assert.match(d, /^M[\d.]+ [\d.]+ h0 M[\d.]+ [\d.]+ L[\d.]+ [\d.]+ M[\d.]+ [\d.]+ h0$/);
});

Deno.test("linePlot: log scale uses decades and skips non-positive values", () => {
  const svg = linePlot({
    xLabel: "step",
    yLabel: "loss",
    logY: true,
    series: [{ name: "loss", points: curve(40, (i) => (i === 5 ? 0 : 10 * 10 ** (-i / 10))) }],
  });
  const els = parseXml(svg);
  const yt = els.filter((e) => e.attrs.class === "tick y-tick").map((e) =>
    Number(e.attrs["data-value"])
  );
  assert.deepEqual(yt, [0.001, 0.01, 0.1, 1, 10]);
  const texts = els.filter((e) => e.name === "text").map((e) => e.text);
  assert.ok(texts.includes("loss (log)"));
  assert.equal(els.find((e) => e.name === "path")!.attrs.d.match(/M/g)!.length, 2);
});

Deno.test("linePlot: empty series, no series, and one point are handled", () => {
  const svg = linePlot({
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "empty", points: [] }, { name: "nan", points: [[NaN, NaN]] }],
  });
  const els = parseXml(svg);
  assert.deepEqual(els.filter((e) => e.name === "path").map((e) => e.attrs.d), ["", ""]);
  assert.ok(els.some((e) => e.attrs.class === "no-data"));
  const none = parseXml(linePlot({ xLabel: "x", yLabel: "y", series: [] }));
  assert.ok(!none.some((e) => e.attrs.class === "legend"));
  const one = parseXml(
    linePlot({ xLabel: "x", yLabel: "y", series: [{ name: "p", points: [[3, 3]] }] }),
  );
  assert.match(one.find((e) => e.name === "path")!.attrs.d, /^M[\d.]+ [\d.]+ h0$/);
  assert.throws(() => linePlot({ xLabel: "x", yLabel: "y", series: [], width: 0 }), /plot size/);
});

Deno.test("linePlot: distinct colours for many series, dashes once the palette repeats", () => {
  const series = Array.from(
    { length: 9 },
    (_, k) => ({ name: `s${k}`, points: curve(3, (i) => i + k) }),
  );
  const paths = parseXml(linePlot({ xLabel: "x", yLabel: "y", series })).filter((e) =>
    e.name === "path"
  );
  const styles = paths.map((p) => `${p.attrs.stroke}|${p.attrs["stroke-dasharray"] ?? ""}`);
  assert.equal(new Set(styles).size, 9);
});

Deno.test("linePlot: fixed domains clip what falls outside", () => {
  const els = parseXml(linePlot({
    xLabel: "x",
    yLabel: "y",
    xDomain: [0, 100],
    yDomain: [0, 1],
    series: [{ name: "a", points: [[0, 0], [50, 5], [100, 1]] }],
  }));
  const yt = els.filter((e) => e.attrs.class === "tick y-tick").map((e) =>
    Number(e.attrs["data-value"])
  );
  assert.equal(yt[0], 0);
  assert.equal(yt[yt.length - 1], 1);
  const clip = els.find((e) => e.name === "clipPath")!.attrs.id;
  assert.ok(els.some((e) => e.name === "g" && e.attrs["clip-path"] === `url(#${clip})`));
});

Deno.test("plotGrid: several plots in one well-formed SVG with distinct clip ids", () => {
  const mk = (title: string, logY = false) => ({
    title,
    xLabel: "step",
    yLabel: "v",
    logY,
    series: [{ name: "a", points: curve(5, (i) => i + 1) }],
  });
  const svg = plotGrid(
    [mk("loss", true), mk("loss", true), mk("acc"), mk("acc vs s")],
    2,
    "Run & co",
  );
  const els = parseXml(svg);
  assert.equal(els[0].attrs.width, "1280");
  assert.equal(els[0].attrs.height, String(36 + 800));
  assert.equal(els.filter((e) => e.attrs.class === "cell").length, 4);
  assert.equal(els.filter((e) => e.name === "path").length, 4);
  const ids = els.filter((e) => e.name === "clipPath").map((e) => e.attrs.id);
  assert.equal(new Set(ids).size, 4);
  assert.ok(els.some((e) => e.text === "Run &amp; co"));
  assert.throws(() => plotGrid([], 0), /columns must be a positive integer/);
  parseXml(plotGrid([], 2));
});

Deno.test("niceTicks: 1-2-5 steps covering the range", () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.13, 0.87), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.13, 0.87, 10), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
  assert.deepEqual(niceTicks(0, 9500), [0, 2000, 4000, 6000, 8000, 10000]);
  assert.deepEqual(niceTicks(-3, 7), [-4, -2, 0, 2, 4, 6, 8]);
  assert.deepEqual(niceTicks(5, 5), [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6]);
  for (const [lo, hi] of [[1e-7, 3e-7], [123.4, 9876], [-1e6, 1], [0.30000000000000004, 0.6]]) {
    const t = niceTicks(lo, hi);
    assert.ok(t[0] <= lo && t[t.length - 1] >= hi && t.length >= 3 && t.length <= 12, `${t}`);
    const step = t[1] - t[0];
    const m = step / 10 ** Math.floor(Math.log10(step));
    assert.ok([1, 2, 5].some((k) => Math.abs(m - k) < 1e-9), `step ${step}`);
  }
  assert.throws(() => niceTicks(0, NaN), /non-finite/);
});

Deno.test("logTicks: decades, 1-2-5 within a decade, and finer when needed", () => {
  assert.deepEqual(logTicks(0.002, 3), [0.001, 0.01, 0.1, 1, 10]);
  assert.deepEqual(logTicks(0.15, 0.9), [0.1, 0.2, 0.5, 1]);
  assert.deepEqual(logTicks(0.05, 0.4), [0.05, 0.1, 0.2, 0.5]);
  assert.deepEqual(logTicks(0.05, 2.3), [0.05, 0.1, 0.2, 0.5, 1, 2, 5]);
  assert.deepEqual(logTicks(0.32, 0.78), [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
  assert.ok(logTicks(1e-12, 1e12).length <= 9);
  assert.throws(() => logTicks(0, 1), /positive finite range/);
});

Deno.test("formatTick and escapeXml", () => {
  assert.deepEqual([0, 0.1 + 0.2, 2000, 1e-4, 2.5e7, -0.005].map(formatTick), [
    "0",
    "0.3",
    "2000",
    "1e-4",
    "2.5e7",
    "-0.005",
  ]);
  assert.equal(escapeXml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
});
