/**
 * The least-recently-used cache the oneDNN kernel families keep their primitives in (`conv_dnnl.ts`,
 * `batch_norm_dnnl.ts`, `eltwise_dnnl.ts`): one entry per key (a pass and its geometry), created on
 * first use, null remembered too (oneDNN takes no implementation there); when full, the least
 * recently used entry is destroyed to make room.
 * @module
 */

/** Looks up `key`, creating the entry with `create` on a miss. */
export type PrimitiveCache<E> = (key: string, create: () => E | null) => E | null;

/** A cache of at most `limit` entries; `destroy` frees an evicted one. */
export const primitiveCache = <E>(limit: number, destroy: (e: E) => void): PrimitiveCache<E> => {
  const cache = new Map<string, E | null>();
  return (key, create) => {
    let e = cache.get(key);
    if (e === undefined) {
      e = create();
      if (cache.size >= limit) {
        const [oldKey, old] = cache.entries().next().value!;
        cache.delete(oldKey);
        if (old) destroy(old);
      }
    } else cache.delete(key); // re-inserted below: most recently used last
    cache.set(key, e);
    return e;
  };
};
