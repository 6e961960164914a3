/** The benchmark suites `deno task bench` runs, in order. Each issue adds its suite here. */
import type { BenchSuite } from "../../lib/bench/harness.ts";
import { coreSuite } from "./core.ts";
import { nativeSuite } from "./native.ts";
import { modelsSuite } from "./models.ts";
import { kfacSuite } from "./kfac.ts";
import { optimSuite } from "./optim.ts";
import { metaSuite } from "./meta.ts";
import { mlhfNativeSuite } from "./mlhf_native.ts";
import { distributedSuite } from "./distributed.ts";
import { webgpuSuite } from "./webgpu.ts";

export const SUITES: readonly BenchSuite[] = [
  coreSuite,
  nativeSuite,
  modelsSuite,
  optimSuite,
  metaSuite,
  mlhfNativeSuite,
  kfacSuite,
  distributedSuite,
  webgpuSuite,
];
