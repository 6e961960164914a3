import { assert } from "../../tests/_util/deps.ts";
import { escapeCell, markdownTable } from "./markdown_table.ts";
import { formatCompact, formatDuration, formatMs, formatPercent, formatSig } from "./format.ts";

Deno.test("markdownTable: padded columns, alignment, numbers and empty cells", () => {
  const md = markdownTable(
    ["optimizer", "loss", "acc", "note"],
    [["SGD", 0.51234, "91.2%", null], ["MLHF", 0.1, "97.5%", "best"]],
    ["left", "right", "center"],
  );
  assert.equal(
    md,
    [
      "| optimizer |   loss |  acc  | note |",
      "| :-------- | -----: | :---: | ---- |",
      "| SGD       | 0.5123 | 91.2% |      |",
      "| MLHF      | 0.1000 | 97.5% | best |",
      "",
    ].join("\n"),
  );
});

Deno.test("markdownTable: pipes and line breaks are escaped", () => {
  const md = markdownTable(["a|b"], [["x | y\nz"], ["back\\|slash"]]);
  const lines = md.trimEnd().split("\n");
  const cell = (s: string) => `| ${s.padEnd(13)} |`; // the widest escaped cell has 13 characters
  assert.equal(lines[0], cell("a\\|b"));
  assert.equal(lines[2], cell("x \\| y<br>z"));
  assert.equal(lines[3], cell("back\\\\\\|slash"));
  // Every line has exactly two unescaped pipes (one column).
  for (const l of lines) {
    assert.equal(l.replace(/\\\\/g, "").replace(/\\\|/g, "").split("|").length, 3);
  }
  assert.equal(escapeCell("a|b"), "a\\|b");
});

Deno.test("markdownTable: shape errors name the row", () => {
  assert.throws(
    () => markdownTable(["a", "b"], [["1", "2"], ["3"]]),
    /row 1 has 1 cells, expected 2/,
  );
  assert.throws(() => markdownTable([], []), /at least one column/);
  assert.throws(() => markdownTable(["a"], [], ["left", "right"]), /2 alignments for 1 columns/);
});

Deno.test("format: significant digits, compact, durations, percentages", () => {
  assert.deepEqual(
    [0, 1.5, 12345.6, 0.012345, 1e-5, -3.2e-5, 1.23e7, 9.99996].map((x) => formatSig(x)),
    [
      "0.000",
      "1.500",
      "12346",
      "0.01235",
      "1.000e-5",
      "-3.200e-5",
      "1.230e7",
      "10.00",
    ],
  );
  assert.equal(formatSig(Math.PI, 2), "3.1");
  assert.deepEqual([NaN, Infinity, -Infinity].map((x) => formatSig(x)), ["NaN", "Inf", "-Inf"]);
  assert.throws(() => formatSig(1, 0), /digits/);
  assert.deepEqual([4096, 0.123456, 1.5, 3.2e-5, 1.2e7, -7].map((x) => formatCompact(x)), [
    "4096",
    "0.1235",
    "1.5",
    "3.2e-5",
    "1.2e7",
    "-7",
  ]);
  assert.deepEqual([0.85, 12.34, 4567, 61_000, 3_723_000].map(formatMs), [
    "850 µs",
    "12.3 ms",
    "4.57 s",
    "0:01:01",
    "1:02:03",
  ]);
  assert.deepEqual([7, 45296, 0.4, -61, NaN].map(formatDuration), [
    "0:00:07",
    "12:34:56",
    "0:00:00",
    "-0:01:01",
    "--:--:--",
  ]);
  assert.equal(formatPercent(0.9123), "91.2%");
  assert.equal(formatPercent(1, 0), "100%");
  assert.equal(formatPercent(NaN), "NaN");
});
