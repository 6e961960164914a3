/**
 * Command-line flags decoded with io-ts into typed configs. A flag spec names each flag, its codec
 * (from the raw string), its default and a one-line description; `parseFlags` returns the typed
 * config, or a `FlagError` naming the flag, the bad value and what was expected (exit code 2).
 *
 * Deno std's `parseArgs` is not reachable here (JSR is blocked), so `node:util`'s is used.
 * @module
 */
import { parseArgs } from "node:util";
import { E, t } from "../_deps.ts";

/** A bad command line. `exitCode` is 2, the convention for usage errors. */
export class FlagError extends Error {
  override name = "FlagError";
  readonly exitCode = 2;
}

/** One flag: the codec decodes the raw string (or boolean for switches). */
export interface FlagSpec<A> {
  readonly codec: t.Decoder<unknown, A>;
  readonly default: A;
  readonly description: string;
  /** What a valid value looks like, for error messages and --help (e.g. "a positive integer"). */
  readonly expected: string;
  readonly boolean?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec<unknown>>;
export type ConfigOf<S extends FlagSpecs> = { -readonly [K in keyof S]: S[K]["default"] };

const fromString = <A>(
  name: string,
  parse: (s: string) => A | undefined,
  is: (u: unknown) => u is A,
): t.Type<A, unknown, unknown> =>
  new t.Type<A, unknown, unknown>(
    name,
    is,
    (u, c) => {
      if (is(u)) return t.success(u);
      const v = typeof u === "string" ? parse(u.trim()) : undefined;
      return v === undefined ? t.failure(u, c) : t.success(v);
    },
    (a) => a,
  );

const parseNumber = (s: string): number | undefined => {
  if (s === "") return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
};
const isNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u);

/** A finite number. */
export const NumberFlag = fromString("number", parseNumber, isNumber);
/** A number > 0. */
export const PositiveNumberFlag = fromString(
  "positive number",
  (s) => {
    const n = parseNumber(s);
    return n !== undefined && n > 0 ? n : undefined;
  },
  (u): u is number => isNumber(u) && u > 0,
);
/** A number ≥ 0. */
export const NonNegativeNumberFlag = fromString(
  "non-negative number",
  (s) => {
    const n = parseNumber(s);
    return n !== undefined && n >= 0 ? n : undefined;
  },
  (u): u is number => isNumber(u) && u >= 0,
);
/** An integer (any sign). */
export const IntFlag = fromString(
  "integer",
  (s) => {
    const n = parseNumber(s);
    return n !== undefined && Number.isInteger(n) ? n : undefined;
  },
  (u): u is number => Number.isInteger(u),
);
/** An integer ≥ 1. */
export const PositiveIntFlag = fromString(
  "positive integer",
  (s) => {
    const n = parseNumber(s);
    return n !== undefined && Number.isInteger(n) && n >= 1 ? n : undefined;
  },
  (u): u is number => Number.isInteger(u) && (u as number) >= 1,
);
/** A probability in [0, 1]. */
export const UnitIntervalFlag = fromString(
  "number in [0, 1]",
  (s) => {
    const n = parseNumber(s);
    return n !== undefined && n >= 0 && n <= 1 ? n : undefined;
  },
  (u): u is number => isNumber(u) && u >= 0 && u <= 1,
);
/** Any non-empty string. */
export const StringFlag = fromString(
  "string",
  (s) => (s.length ? s : undefined),
  (u): u is string => typeof u === "string" && u.length > 0,
);
/** One of a fixed set of names. */
export const oneOf = <L extends string>(values: readonly L[]): t.Type<L, unknown, unknown> =>
  fromString(
    values.join(" | "),
    (s) => (values as readonly string[]).includes(s) ? s as L : undefined,
    (u): u is L => typeof u === "string" && (values as readonly string[]).includes(u),
  );
/** A boolean switch. */
export const BooleanFlag = fromString(
  "boolean",
  (s) => (s === "true" ? true : s === "false" ? false : undefined),
  (u): u is boolean => typeof u === "boolean",
);

/** Helper to declare a flag with its type inferred from the codec. */
export const flag = <A>(
  codec: t.Decoder<unknown, A>,
  defaultValue: A,
  description: string,
  expected?: string,
): FlagSpec<A> => ({
  codec,
  default: defaultValue,
  description,
  expected: expected ?? `a ${codec.name}`,
  boolean: (codec as unknown) === BooleanFlag,
});

/** The --help text for a command. */
export const usage = (command: string, summary: string, specs: FlagSpecs): string => {
  const lines = Object.entries(specs).map(([name, s]) => {
    const def = s.boolean ? "" : ` (default: ${JSON.stringify(s.default)})`;
    return `  --${name}${s.boolean ? "" : " <value>"}\n      ${s.description}; ${s.expected}${def}`;
  });
  return `Usage: deno task ${command} [flags]\n\n${summary}\n\nFlags:\n${
    lines.join("\n")
  }\n  --help\n      print this message`;
};

/** Result of parsing: the typed config, or a request for help. */
export type Parsed<S extends FlagSpecs> =
  | { readonly kind: "config"; readonly config: ConfigOf<S> }
  | { readonly kind: "help" };

/**
 * Parses and decodes `argv` against `specs`. Throws a `FlagError` for an unknown flag, a missing
 * value, or a value the flag's codec rejects, naming the flag, the value and what was expected.
 */
export const parseFlags = <S extends FlagSpecs>(argv: readonly string[], specs: S): Parsed<S> => {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const [name, s] of Object.entries(specs)) {
    options[name] = { type: s.boolean ? "boolean" : "string" };
  }
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify.*$/s, "");
    throw new FlagError(
      `${msg}. Known flags: ${Object.keys(specs).map((k) => `--${k}`).join(", ")}`,
    );
  }
  if (values.help) return { kind: "help" };
  const config: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    const raw = values[name];
    if (raw === undefined) {
      config[name] = s.default;
      continue;
    }
    const decoded = s.codec.decode(raw);
    if (E.isLeft(decoded)) {
      throw new FlagError(
        `--${name}: invalid value ${JSON.stringify(raw)}: expected ${s.expected}`,
      );
    }
    config[name] = decoded.right;
  }
  return { kind: "config", config: config as ConfigOf<S> };
};
