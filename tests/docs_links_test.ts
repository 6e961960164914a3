/**
 * Every `docs/<file>.md#<anchor>` cited in the repository's TypeScript and Markdown files (code
 * comments, help text, messages, READMEs), and every `(<file>.md#<anchor>)` or `(#<anchor>)` link
 * inside `docs/`, names an existing file and a heading of it, with GitHub's heading anchors.
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
/** This file: its examples name pages that do not exist. */
const SELF = "tests/docs_links_test.ts";
const SKIP_DIRS = new Set(["node_modules", ".git", ".tools", "runs", "results", "tmp", ".bench"]);

/** GitHub's anchor for a heading's text: markup dropped, lowercased, punctuation removed. */
export const slug = (heading: string): string =>
  heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: keep the text
    .replace(/[`*]/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");

/** The anchors of a Markdown text's headings (outside code fences), duplicates numbered. */
export const anchorsOf = (markdown: string): Set<string> => {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
};

/** One cited reference: where it is, the docs file it names and the anchor (or null). */
interface Ref {
  readonly from: string;
  readonly line: number;
  readonly file: string;
  readonly anchor: string | null;
}

const ANCHOR = String.raw`[\p{L}\p{N}_-]*[\p{L}\p{N}_]`;
const CITED = new RegExp(String.raw`docs/([\w-]+\.md)(?:#(${ANCHOR}))?`, "gu");
const LOCAL = new RegExp(String.raw`\]\((?:([\w-]+\.md))?(?:#(${ANCHOR}))?\)`, "gu");

/** The references in one file's text (`inDocs`: also the relative links of a docs page). */
export const refsIn = (from: string, text: string, inDocs: boolean): Ref[] => {
  const refs: Ref[] = [];
  text.split("\n").forEach((line, i) => {
    for (const m of line.matchAll(CITED)) {
      refs.push({ from, line: i + 1, file: m[1], anchor: m[2] ?? null });
    }
    if (!inDocs) return;
    for (const m of line.matchAll(LOCAL)) {
      if (!m[1] && !m[2]) continue;
      refs.push({
        from,
        line: i + 1,
        file: m[1] ?? from.replace(/^docs\//, ""),
        anchor: m[2] ?? null,
      });
    }
  });
  return refs;
};

/** The problems of a set of references against the docs pages (file name → Markdown). */
export const brokenRefs = (refs: readonly Ref[], pages: ReadonlyMap<string, string>): string[] => {
  const anchors = new Map([...pages].map(([f, md]) => [f, anchorsOf(md)]));
  return refs.flatMap((r) => {
    const where = `${r.from}:${r.line}`;
    const a = anchors.get(r.file);
    if (!a) return [`${where}: docs/${r.file} does not exist`];
    if (r.anchor !== null && !a.has(r.anchor)) {
      return [`${where}: docs/${r.file} has no heading with anchor #${r.anchor}`];
    }
    return [];
  });
};

const walk = async (dir: URL, rel: string, out: string[]): Promise<void> => {
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && !SKIP_DIRS.has(e.name)) {
      await walk(new URL(`${e.name}/`, dir), `${rel}${e.name}/`, out);
    } else if (e.isFile && /\.(ts|md)$/.test(e.name)) out.push(`${rel}${e.name}`);
  }
};

Deno.test("docs links: slugs follow GitHub's heading anchors", () => {
  assert.equal(slug("Gradient of H"), "gradient-of-h");
  assert.equal(slug("R-forward and transpose rules"), "r-forward-and-transpose-rules");
  assert.equal(slug("Levenberg–Marquardt rule"), "levenbergmarquardt-rule");
  assert.equal(slug("`tf.customGrad` returns *one* tensor"), "tfcustomgrad-returns-one-tensor");
  assert.equal(slug("See [the notes](notes.md#x)"), "see-the-notes");
  assert.deepEqual(
    [...anchorsOf("# A\n```\n# not a heading\n```\n## A\n### B c\n")],
    ["a", "a-1", "b-c"],
  );
});

Deno.test("docs links: a missing file or anchor is reported with its place", () => {
  const pages = new Map([["a.md", "# Top\n## Part one\n"]]);
  const refs = [
    ...refsIn("x.ts", "// see docs/a.md#part-one and docs/a.md#part-two.", false),
    ...refsIn("y.md", "(docs/b.md#top), docs/a.md", false),
    ...refsIn("docs/a.md", "[up](#top) [gone](#nowhere) [other](a.md#part-one)", true),
  ];
  assert.deepEqual(brokenRefs(refs, pages), [
    "x.ts:1: docs/a.md has no heading with anchor #part-two",
    "y.md:1: docs/b.md does not exist",
    "docs/a.md:1: docs/a.md has no heading with anchor #nowhere",
  ]);
});

Deno.test("docs links: every cited docs/<file>.md#<anchor> exists", async () => {
  const files: string[] = [];
  await walk(ROOT, "", files);
  const pages = new Map<string, string>();
  for (const f of files.filter((f) => /^docs\/[^/]+\.md$/.test(f))) {
    pages.set(f.slice("docs/".length), await Deno.readTextFile(new URL(f, ROOT)));
  }
  assert.ok(pages.has("algorithm.md") && pages.has("tfjs-notes.md"), "docs/ pages not found");
  const refs: Ref[] = [];
  for (const f of files.filter((f) => f !== SELF)) {
    refs.push(...refsIn(f, await Deno.readTextFile(new URL(f, ROOT)), f.startsWith("docs/")));
  }
  assert.ok(refs.length > 50, `only ${refs.length} references to docs/ found`);
  assert.deepEqual(brokenRefs(refs, pages), []);
});
