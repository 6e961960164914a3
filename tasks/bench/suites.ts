/** The benchmark suites `deno task bench` runs, in order. Each issue adds its suite here. */
import type { BenchSuite } from "../../lib/bench/harness.ts";

export const SUITES: readonly BenchSuite[] = [];
