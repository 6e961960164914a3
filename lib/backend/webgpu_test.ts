import { assert } from "../../tests/_util/deps.ts";
import { adapterName, softwareAdapterReason } from "./webgpu.ts";

Deno.test("webgpu: software adapters are recognised, hardware ones are not", () => {
  const llvmpipe = { vendor: "65541", description: "llvmpipe (LLVM 15.0.6, 256 bits)" };
  assert.match(
    softwareAdapterReason(llvmpipe)!,
    /'llvmpipe \(LLVM 15\.0\.6, 256 bits\)'.*software/,
  );
  assert.match(
    softwareAdapterReason({ ...llvmpipe, isFallbackAdapter: true })!,
    /fallback \(software\) adapter/,
  );
  assert.match(softwareAdapterReason({}, true)!, /'unnamed adapter' is a fallback/);
  assert.ok(softwareAdapterReason({ description: "Google SwiftShader" }));
  assert.ok(softwareAdapterReason({ vendor: "google", architecture: "swiftshader" }));
  assert.ok(softwareAdapterReason({ description: "lavapipe" }));
  assert.equal(softwareAdapterReason({ description: "NVIDIA H200" }), null);
  assert.equal(softwareAdapterReason({ vendor: "nvidia", architecture: "hopper" }), null);
  assert.equal(softwareAdapterReason({}), null); // Deno may report nothing: trust the flag then
  assert.equal(adapterName({ vendor: "nvidia", architecture: "hopper" }), "nvidia hopper");
});
