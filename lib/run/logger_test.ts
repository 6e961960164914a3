import { join } from "node:path";
import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { csvLine, openCsv, openJsonl, parseCsv, readCsv, readJsonl } from "./logger.ts";

await useTestBackend();

const withTempDir = async (f: (dir: string) => Promise<void>): Promise<void> => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-log-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

Deno.test("jsonl: one object per line, written at once; non-finite numbers survive", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "log.jsonl");
    const log = await openJsonl(path);
    log.log({ step: 1, loss: 2.5, tag: "a" });
    // Written before close: another reader sees it immediately.
    assert.equal(await Deno.readTextFile(path), '{"step":1,"loss":2.5,"tag":"a"}\n');
    log.log({ step: 2, loss: NaN, grad: Infinity, lo: -Infinity, nested: { k: [1] } });
    log.close();
    const lines = (await Deno.readTextFile(path)).split("\n");
    assert.equal(lines.length, 3);
    assert.equal(lines[2], "");
    assert.equal(
      lines[1],
      '{"step":2,"loss":"NaN","grad":"Infinity","lo":"-Infinity","nested":{"k":[1]}}',
    );
    const back = await readJsonl(path);
    assert.equal(back.length, 2);
    assert.ok(Number.isNaN(back[1].loss));
    assert.equal(back[1].grad, Infinity);
    assert.equal(back[1].lo, -Infinity);
  });
});

Deno.test("jsonl: resume appends; truncateAfterStep drops later records; partial line dropped", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "log.jsonl");
    let log = await openJsonl(path);
    for (let step = 1; step <= 5; step++) log.log({ step, loss: 1 / step });
    log.log({ event: "eval", acc: 0.5 }); // no step: part of the prefix before step 6
    log.close();
    await Deno.writeTextFile(path, '{"step":6,"lo', { append: true }); // a crash mid-write

    log = await openJsonl(path); // plain resume: only the partial line goes
    log.close();
    assert.deepEqual((await readJsonl(path)).map((r) => r.step), [1, 2, 3, 4, 5, undefined]);

    log = await openJsonl(path, { truncateAfterStep: 3 });
    log.log({ step: 4, loss: 0.3 });
    log.close();
    const records = await readJsonl(path);
    assert.deepEqual(records.map((r) => r.step), [1, 2, 3, 4]);
    assert.equal(records[3].loss, 0.3);

    log = await openJsonl(path, { overwrite: true });
    log.log({ step: 0 });
    log.close();
    assert.deepEqual(await readJsonl(path), [{ step: 0 }]);

    log = await openJsonl(path, { truncateAfterStep: 10, stepKey: "it" }); // nothing to cut
    log.close();
    assert.deepEqual(await readJsonl(path), [{ step: 0 }]);
  });
});

Deno.test("jsonl: a corrupt middle line and tensor values are clear errors", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "bad.jsonl");
    await Deno.writeTextFile(path, '{"step":1}\n{oops\n{"step":2}\n');
    await assert.rejects(
      openJsonl(path, { truncateAfterStep: 1 }),
      /bad\.jsonl: line 2: not valid JSON/,
    );
    await assert.rejects(readJsonl(path), /line 2: not valid JSON/);
    const log = await openJsonl(join(dir, "ok.jsonl"));
    const x = tf.scalar(1);
    assert.throws(() => log.log({ loss: x }), /field "loss" is a tensor/);
    assert.throws(() => log.log([1] as never), /a record must be an object/);
    x.dispose();
    log.close();
    assert.equal(await Deno.readTextFile(join(dir, "ok.jsonl")), "");
  });
});

Deno.test("csv: header from the first record, stable order, empty missing values, escaping", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "log.csv");
    const log = await openCsv(path);
    log.log({ step: 1, loss: 0.5, note: 'say "hi", then\nleave' });
    log.log({ loss: 0.25, step: 2 }); // other key order, note missing
    log.log({ step: 3, loss: NaN, note: " padded " });
    log.close();
    assert.equal(
      await Deno.readTextFile(path),
      'step,loss,note\n1,0.5,"say ""hi"", then\nleave"\n2,0.25,\n3,NaN," padded "\n',
    );
    const { columns, rows } = await readCsv(path);
    assert.deepEqual(columns, ["step", "loss", "note"]);
    assert.deepEqual(rows[0], { step: "1", loss: "0.5", note: 'say "hi", then\nleave' });
    assert.deepEqual(rows[1], { step: "2", loss: "0.25", note: "" });
    assert.equal(rows[2].note, " padded ");
  });
});

Deno.test("csv: a new key widens the header, earlier rows get empty cells", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "log.csv");
    const log = await openCsv(path);
    log.log({ step: 1, loss: 0.5 });
    log.log({ step: 2, loss: 0.4, testAcc: 0.9 });
    log.log({ step: 3, loss: 0.3 });
    log.close();
    assert.equal(
      await Deno.readTextFile(path),
      "step,loss,testAcc\n1,0.5,\n2,0.4,0.9\n3,0.3,\n",
    );
  });
});

Deno.test("csv: resume appends under the existing header and truncates after a step", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "log.csv");
    let log = await openCsv(path);
    for (let step = 1; step <= 6; step++) log.log({ step, loss: step / 10, tag: `s,${step}` });
    log.close();
    await Deno.writeTextFile(path, '7,0.7,"s,7', { append: true }); // crash mid-row (open quote)

    log = await openCsv(path, { truncateAfterStep: 4 });
    log.log({ tag: "resumed", step: 5 });
    log.close();
    const { columns, rows } = await readCsv(path);
    assert.deepEqual(columns, ["step", "loss", "tag"]);
    assert.deepEqual(rows.map((r) => r.step), ["1", "2", "3", "4", "5"]);
    assert.deepEqual(rows[4], { step: "5", loss: "", tag: "resumed" });

    await Deno.writeTextFile(join(dir, "nostep.csv"), "a,b\n1,2\n");
    await assert.rejects(
      openCsv(join(dir, "nostep.csv"), { truncateAfterStep: 1 }),
      /nostep\.csv: cannot truncate after step 1: no "step" column/,
    );
    log = await openCsv(path, { overwrite: true });
    log.log({ x: 1 });
    log.close();
    assert.equal(await Deno.readTextFile(path), "x\n1\n");
  });
});

Deno.test("csv: parser handles quotes, CRLF, empty cells and partial rows", () => {
  assert.deepEqual(parseCsv('a,b\r\n"x,""y""",\r\n'), {
    rows: [["a", "b"], ['x,"y"', ""]],
    complete: true,
  });
  assert.deepEqual(parseCsv("a,b\n1,2"), { rows: [["a", "b"], ["1", "2"]], complete: false });
  assert.deepEqual(parseCsv('a\n"open\n'), { rows: [["a"], ["open\n"]], complete: false });
  assert.deepEqual(parseCsv(""), { rows: [], complete: true });
  assert.equal(csvLine(["a", "b,c", 'q"', "line\nbreak"]), 'a,"b,c","q""","line\nbreak"\n');
  const cells = ["plain", "with,comma", '"quoted"', "multi\r\nline", "", " sp "];
  assert.deepEqual(parseCsv(csvLine(cells)).rows, [cells]);
});
