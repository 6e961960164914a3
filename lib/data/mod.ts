/**
 * The data layer: MNIST (embedded), Fashion-MNIST and other IDX sets, CIFAR-10 (binary), ImageNet
 * (TFRecord shards), their preprocessing, and a seeded, resumable, prefetching batch pipeline.
 * @module
 */
export * from "./augment.ts";
export * from "./batch.ts";
export * from "./cifar10.ts";
export * from "./crc32c.ts";
export * from "./dataset.ts";
export * from "./errors.ts";
export * from "./example_proto.ts";
export * from "./flags.ts";
export * from "./idx.ts";
export * from "./images.ts";
export * from "./imagenet.ts";
export * from "./jpeg.ts";
export * from "./mnist.ts";
export * from "./pipeline.ts";
export * from "./source.ts";
export * from "./tfrecord.ts";
export * from "./subset.ts";
