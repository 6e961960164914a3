/** The benchmark suites `deno task bench` runs, in order. Each issue adds its suite here. */
import type { BenchSuite } from "../../lib/bench/harness.ts";
import { nativeSuite } from "./native.ts";
import { modelsSuite } from "./models.ts";
import { kfacSuite } from "./kfac.ts";

export const SUITES: readonly BenchSuite[] = [nativeSuite, modelsSuite, kfacSuite];
