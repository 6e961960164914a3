import { assert } from "../tests/_util/deps.ts";
import { distributedStepMs, efficiency, ringAllreduceMs } from "./mpi_scaling.ts";

Deno.test("mpi_scaling: ring all-reduce time and the K + 2 cost model", () => {
  const net = { gbps: 8, latencyUs: 0 }; // 1 GB/s
  // 2(N−1)/N of 4·n bytes at 1 GB/s: N = 2, 1e6 floats → 4 MB → 4 ms.
  assert.ok(Math.abs(ringAllreduceMs(1e6, 2, net) - 4) < 1e-9);
  assert.equal(ringAllreduceMs(1e6, 1, net), 0);
  assert.ok(Math.abs(ringAllreduceMs(0, 4, { gbps: 8, latencyUs: 10 }) - 0.06) < 1e-12);
  const m = { name: "m", params: 1e6, stepMs: 100, reductions: 6, hostMs: 1, lstmMs: 0 };
  assert.ok(Math.abs(distributedStepMs(m, 2, net) - (100 + 6 * 5)) < 1e-9);
  assert.equal(distributedStepMs(m, 1, net), 100);
  assert.ok(Math.abs(efficiency(m, 2, net) - 100 / 130) < 1e-12);
});
