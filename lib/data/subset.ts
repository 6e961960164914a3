/**
 * A contiguous slice of a source's storage order, for disjoint meta-training and evaluation data
 * (docs/algorithm.md#meta-training-data: the original meta-trains on CIFAR batches 1–3 and
 * evaluates on 4–5; MNIST's training set is split the same way, first half / second half).
 * @module
 */
import type { Source } from "./source.ts";

/** The examples with storage index in [start, end) (ids kept as the inner source's). */
export const subsetSource = <Id>(inner: Source<Id>, start: number, end: number): Source<Id> => {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end)) {
    throw new RangeError(`subset [${start}, ${end}) is empty or not a range of indices`);
  }
  return {
    name: `${inner.name}[${start}:${end}]`,
    shape: inner.shape,
    numClasses: inner.numClasses,
    ids: async function* (epoch, key) {
      let i = 0;
      for await (const id of inner.ids(epoch, key)) {
        if (i >= end) return;
        if (i++ >= start) yield id;
      }
    },
    load: (id, key) => inner.load(id, key),
    close: inner.close ? () => inner.close!() : undefined,
  };
};
