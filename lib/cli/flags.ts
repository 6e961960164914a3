/**
 * Command-line flags decoded with io-ts into typed configs. A flag spec names each flag, its codec
 * (from the raw string), its default and a one-line description; `parseFlags` returns the typed
 * config, or a `FlagError` naming the flag, the bad value and what was expected (exit code 2).
 *
 * Flags are `--name value` or `--name=value` (switches: `--name`, or `--name=true|false`). After a
 * flag that takes a value, a negative number (`--lr -1`) is its value and any other argument
 * starting with `-` means the value is missing. Numbers are decimal only (`0x10`, `0b1`, `0o7` are
 * refused) and integers are plain digits (`1e3`, `1.0` are refused), so nothing is read otherwise
 * than it looks. A flag given twice is an error.
 * @module
 */
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

/** A decimal number as typed: digits, an optional fraction and exponent (no 0x, 0b, 0o, Infinity). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
/** An integer as typed: plain digits. */
const DIGITS = /^[+-]?\d+$/;

/** A finite number written in decimal notation, or undefined. */
export const parseDecimal = (s: string): number | undefined => {
  if (!DECIMAL.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
};

/** A safe integer written as plain digits (no exponent, fraction or base prefix), or undefined. */
export const parseDigits = (s: string): number | undefined => {
  if (!DIGITS.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
};

const isNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u);

/** A finite number. */
export const NumberFlag = fromString("number", parseDecimal, isNumber);
/** A number > 0. */
export const PositiveNumberFlag = fromString(
  "positive number",
  (s) => {
    const n = parseDecimal(s);
    return n !== undefined && n > 0 ? n : undefined;
  },
  (u): u is number => isNumber(u) && u > 0,
);
/** A number ≥ 0. */
export const NonNegativeNumberFlag = fromString(
  "non-negative number",
  (s) => {
    const n = parseDecimal(s);
    return n !== undefined && n >= 0 ? n : undefined;
  },
  (u): u is number => isNumber(u) && u >= 0,
);
/** An integer (any sign). */
export const IntFlag = fromString(
  "integer",
  parseDigits,
  (u): u is number => Number.isInteger(u),
);
/** An integer ≥ 1. */
export const PositiveIntFlag = fromString(
  "positive integer",
  (s) => {
    const n = parseDigits(s);
    return n !== undefined && n >= 1 ? n : undefined;
  },
  (u): u is number => Number.isInteger(u) && (u as number) >= 1,
);
/** An integer ≥ 0. */
export const NonNegativeIntFlag = fromString(
  "non-negative integer",
  (s) => {
    const n = parseDigits(s);
    return n !== undefined && n >= 0 ? n : undefined;
  },
  (u): u is number => Number.isInteger(u) && (u as number) >= 0,
);
/** A probability in [0, 1]. */
export const UnitIntervalFlag = fromString(
  "number in [0, 1]",
  (s) => {
    const n = parseDecimal(s);
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

/** A negative number where a flag's value is expected (`--lr -1`): a value, not a flag. */
const NEGATIVE_NUMBER = /^-[\d.]/;

/** Why a numeric-looking value was refused when its notation is what is wrong. */
const notationHint = (raw: string, expected: string): string => {
  const s = raw.trim();
  if (s === "" || !Number.isFinite(Number(s))) return "";
  if (!DECIMAL.test(s)) return " (decimal notation only: no 0x, 0b or 0o)";
  if (/integer/.test(expected) && Number.isInteger(Number(s)) && !DIGITS.test(s)) {
    return " (plain digits only: no exponent or decimal point)";
  }
  return "";
};

/** The raw value of each flag given in `argv`, by name (switches without a value: true). */
const scan = (argv: readonly string[], specs: FlagSpecs): Map<string, string | boolean> => {
  const raw = new Map<string, string | boolean>();
  const known = () => Object.keys(specs).map((k) => `--${k}`).join(", ");
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--") || arg === "--") {
      throw new FlagError(
        `unexpected argument ${JSON.stringify(arg)}: flags are --name value or --name=value ` +
          `(known flags: ${known()})`,
      );
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new FlagError(`--${name}: unknown flag (known flags: ${known()})`);
    let value: string | boolean;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.boolean) value = true;
    else {
      const next = argv[i + 1];
      if (next === undefined) {
        throw new FlagError(`--${name} needs a value: expected ${spec.expected}`);
      }
      if (next.startsWith("-") && next !== "-" && !NEGATIVE_NUMBER.test(next)) {
        throw new FlagError(
          `--${name} needs a value: expected ${spec.expected}, got the flag ${next}` +
            (next.startsWith("--")
              ? ""
              : ` (for a value starting with -, write --${name}=${next})`),
        );
      }
      value = next;
      i++;
    }
    if (raw.has(name)) {
      throw new FlagError(
        `--${name}: given twice (${JSON.stringify(raw.get(name))}, then ${JSON.stringify(value)})`,
      );
    }
    raw.set(name, value);
  }
  return raw;
};

/**
 * Parses and decodes `argv` against `specs`. Throws a `FlagError` for an unknown flag, a missing
 * value, a flag given twice, or a value the flag's codec rejects, naming the flag, the value and
 * what was expected.
 */
export const parseFlags = <S extends FlagSpecs>(argv: readonly string[], specs: S): Parsed<S> => {
  if (argv.includes("--help")) return { kind: "help" };
  const values = scan(argv, specs);
  const config: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    const raw = values.get(name);
    if (raw === undefined) {
      config[name] = s.default;
      continue;
    }
    const decoded = s.codec.decode(raw);
    if (E.isLeft(decoded)) {
      // A codec may say why (the optimizer list names the bad entry); else what was expected.
      const why = decoded.left.map((e) => e.message).find((m) => m);
      throw new FlagError(
        `--${name}: invalid value ${JSON.stringify(raw)}: ${
          why ??
            `expected ${s.expected}${typeof raw === "string" ? notationHint(raw, s.expected) : ""}`
        }`,
      );
    }
    config[name] = decoded.right;
  }
  return { kind: "config", config: config as ConfigOf<S> };
};

/** The names of the flags `argv` gives (for flags whose presence matters, not only their value). */
export const givenFlags = (argv: readonly string[]): Set<string> =>
  new Set(
    argv.filter((a) => a.startsWith("--") && a !== "--").map((a) => a.slice(2).split("=")[0]),
  );
