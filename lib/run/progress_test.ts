import { assert } from "../../tests/_util/deps.ts";
import { formatFields, formatProgress, progress, type ProgressSink } from "./progress.ts";

const base = {
  label: "train",
  total: 1000,
  done: 250,
  startTime: 0,
  startDone: 0,
  fields: {},
  barWidth: 20,
};

Deno.test("formatProgress: percent, bar, count, rate, ETA and fields", () => {
  assert.equal(
    formatProgress(
      { ...base, fields: { loss: 0.123456, acc: 0.5, lr: 1e-5, opt: "mlhf" } },
      10_000,
    ),
    "train   25%  [#####---------------]   250/1000  25 it/s  ETA 0:00:30  " +
      "loss=0.1235 acc=0.5 lr=1e-5 opt=mlhf",
  );
  // Slow loops show seconds per item; a resumed run's rate counts from where it resumed.
  assert.equal(
    formatProgress({ ...base, done: 502, startDone: 500 }, 10_000),
    "train   50%  [##########----------]   502/1000  5 s/it  ETA 0:41:30",
  );
  // Long ETAs use hours.
  assert.match(formatProgress({ ...base, done: 1 }, 10_000), /ETA 2:46:30$/);
});

Deno.test("formatProgress: start, finish, unknown total and overshoot", () => {
  assert.equal(
    formatProgress({ ...base, label: "", done: 0 }, 0),
    "  0%  [--------------------]     0/1000  -- it/s  ETA --:--:--",
  );
  assert.equal(
    formatProgress({ ...base, done: 1000 }, 65_000),
    "train  100%  [####################]  1000/1000  15.4 it/s  in 0:01:05",
  );
  assert.equal(
    formatProgress({ ...base, total: 0, done: 42 }, 2_000),
    "train  42  21 it/s  elapsed 0:00:02",
  );
  assert.match(formatProgress({ ...base, done: 1500 }, 1_000), /100% {2}\[#{20}\] {2}1500\/1000/);
});

Deno.test("formatFields: numbers compact, strings as they are", () => {
  assert.equal(
    formatFields({ step: 120000, loss: 2.345678e-7, x: NaN, s: "a b" }),
    "step=120000 loss=2.346e-7 x=NaN s=a b",
  );
});

const fakeSink = (tty: boolean) => {
  const out: string[] = [];
  const sink: ProgressSink = {
    write: (s) => void out.push(s),
    isTerminal: () => tty,
    columns: () => 60,
  };
  return { out, sink };
};

Deno.test("progress: on a terminal, redraws in place (throttled) and ends with a newline", () => {
  let t = 0;
  const { out, sink } = fakeSink(true);
  const p = progress({ total: 10, label: "eval", sink, now: () => t, redrawMs: 100 });
  t = 50;
  p.update(1, { loss: 1 }); // too soon: no redraw
  assert.equal(out.length, 0);
  t = 150;
  p.update(2, { loss: 0.5 });
  assert.equal(out.length, 1);
  assert.ok(out[0].startsWith("\reval   20%"));
  assert.ok(out[0].endsWith("\x1b[K"));
  assert.ok(out[0].length <= 1 + 59 + 3, "cut to the terminal width");
  t = 1000;
  p.done();
  assert.equal(out.length, 2);
  assert.ok(out[1].startsWith("\reval   20%  ["), "the last count shown: done() does not set it");
  assert.ok(out[1].endsWith("\n"));
  p.update(3);
  p.done();
  assert.equal(out.length, 2, "nothing after done()");
});

Deno.test("progress: not a terminal, one plain line per interval or per N steps", () => {
  let t = 0;
  const { out, sink } = fakeSink(false);
  const p = progress({
    total: 100,
    label: "fit",
    sink,
    now: () => t,
    intervalMs: 5000,
    everySteps: 30,
  });
  for (let i = 1; i <= 100; i++) {
    t = i * 100; // 10 it/s
    if (i < 100) p.update(i, { loss: 1 / i });
  }
  p.done();
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r") && !l.includes("\x1b")));
  // Every 30 steps (the 5 s interval never passes between them), then the final line.
  const counts = out.map((l) => Number(/(\d+)\/100/.exec(l)![1]));
  assert.deepEqual(counts, [30, 60, 90, 99]);
  assert.match(out[out.length - 1], /99\/100 {2}9\.9 it\/s {2}ETA 0:00:00 {2}loss=0\.0101/);
});

Deno.test("progress: not a terminal, without everySteps, prints on the time interval only", () => {
  let t = 0;
  const { out, sink } = fakeSink(false);
  const p = progress({ total: 0, sink, now: () => t, intervalMs: 1000 });
  for (let i = 1; i <= 25; i++) {
    t = i * 100;
    p.update(i);
  }
  assert.deepEqual(out.map((l) => l.split("  ")[0]), ["10", "20"]);
  p.done({ note: "end" });
  assert.equal(out[2], "25  10 it/s  elapsed 0:00:03  note=end\n");
});
