/**
 * The data layer's one error type: every failure names the file and, where it has one, the byte
 * offset and the record index, so a bad shard or a truncated download can be found and replaced.
 * @module
 */

/** Where in a file a problem was found. */
export interface DataErrorLocation {
  /** The file (or directory) concerned. */
  readonly file?: string;
  /** Byte offset in the file. */
  readonly offset?: number;
  /** Index of the record (TFRecord record, IDX/CIFAR item) in the file. */
  readonly record?: number;
}

/** A problem with input data: missing, truncated, corrupt or out of range. */
export class DataError extends Error {
  /** The error's name (`DataError`). */
  override name = "DataError";
  /** The file (or directory) concerned, when known. */
  readonly file?: string;
  /** Byte offset in the file, when known. */
  readonly offset?: number;
  /** Index of the record in the file, when known. */
  readonly record?: number;

  /** A problem described by `message`, prefixed with where it was found. */
  constructor(message: string, where: DataErrorLocation = {}, options?: ErrorOptions) {
    super(`${describeLocation(where)}${message}`, options);
    this.file = where.file;
    this.offset = where.offset;
    this.record = where.record;
  }
}

/**
 * A source whose epoch holds fewer usable examples than one batch: a stream over it could never
 * yield a batch (it would spin through empty epochs forever, or end having yielded nothing).
 */
export class TooFewExamplesError extends DataError {
  /** The error's name. */
  override name = "TooFewExamplesError";
  /** An error for `source`, which yields `examples` usable examples for batches of `batchSize`. */
  constructor(
    /** The source's name. */
    readonly source: string,
    /** Usable examples in one epoch (corrupt ones skipped). */
    readonly examples: number,
    /** The batch size asked for. */
    readonly batchSize: number,
    /** Ids drawn in the epoch (more than `examples` when corrupt records were skipped). */
    readonly drawn: number = examples,
  ) {
    super(
      `${source}: ${examples} example(s) per epoch${
        drawn > examples ? ` (${drawn - examples} corrupt one(s) skipped)` : ""
      }, fewer than one batch of ${batchSize}: no batch can be made`,
    );
  }
}

/** "file: record 3 at byte 120: " style prefix for a location (empty when nothing is known). */
export const describeLocation = ({ file, offset, record }: DataErrorLocation): string => {
  const parts: string[] = [];
  if (record !== undefined) parts.push(`record ${record}`);
  if (offset !== undefined) parts.push(`${record !== undefined ? "at " : ""}byte ${offset}`);
  const head = file !== undefined ? `${file}: ` : "";
  return parts.length ? `${head}${parts.join(" ")}: ` : head;
};

/** How to obtain a data set that is missing, for error messages and the README. */
export interface DatasetHelp {
  /** Human name, e.g. "CIFAR-10 (binary version)". */
  readonly name: string;
  /** Where to get it and what to pass, one or two sentences. */
  readonly howToGet: string;
}

/** The error for a data directory that is missing or lacks files: names each expected file. */
export const missingDataError = (
  dir: string,
  expected: readonly string[],
  missing: readonly string[],
  help: DatasetHelp,
): DataError => {
  const list = expected.length > 8
    ? `${expected.slice(0, 4).join(", ")}, …, ${expected.slice(-2).join(", ")}`
    : expected.join(", ");
  const which = !directoryExists(dir)
    ? "the directory does not exist"
    : missing.length === expected.length
    ? "none of them is there"
    : `missing: ${
      missing.length > 6
        ? `${missing.slice(0, 6).join(", ")} and ${missing.length - 6} more`
        : missing.join(", ")
    }`;
  return new DataError(
    `${help.name} not found in ${dir}: expected ${list} (${which}). ${help.howToGet}`,
    {},
  );
};

const directoryExists = (dir: string): boolean => {
  try {
    return Deno.statSync(dir).isDirectory;
  } catch {
    return false;
  }
};
