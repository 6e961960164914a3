/**
 * A communicator: the ranks of a data-parallel job and the two collectives training uses. Backed by
 * MPI (`openCommunicator`) or, for tests and single-process runs, by `loopback` (one rank). Counts
 * its all-reduces, so the cost model's K + 2 reductions per step can be checked.
 * @module
 */
import { mpiMissing, openMpi } from "./mpi.ts";

/** The ranks of a job and its collectives (host memory; in place). */
export interface Communicator {
  /** This process's rank. */
  readonly rank: number;
  /** The number of ranks. */
  readonly size: number;
  /** Sums `buf` over the ranks, in place, on every rank. */
  allreduceSum(buf: Float32Array | Float64Array): void;
  /** Copies `buf` from rank `root` to every rank, in place. */
  bcast(buf: Uint8Array, root: number): void;
  /** Returns once every rank has called it. */
  barrier(): void;
  /** All-reduces done so far and the floats they moved (per rank, the buffer lengths). */
  readonly stats: { allreduces: number; floats: number };
  /** Ends MPI (call once, on success only; see `Mpi.finalize`). */
  finalize(): void;
}

/** `--distributed` without Open MPI: the one-line message names what to install. */
export class MpiMissingError extends Error {
  /** The error's name. */
  override name = "MpiMissingError";
  constructor() {
    super(mpiMissing());
  }
}

/** MPI_COMM_WORLD as a {@link Communicator}; throws {@link MpiMissingError} without Open MPI. */
export const openCommunicator = (): Communicator => {
  const mpi = openMpi();
  if (!mpi) throw new MpiMissingError();
  const stats = { allreduces: 0, floats: 0 };
  return {
    rank: mpi.rank,
    size: mpi.size,
    stats,
    allreduceSum: (buf) => {
      stats.allreduces++;
      stats.floats += buf.length;
      if (mpi.size > 1) mpi.allreduce(buf, "sum");
    },
    bcast: (buf, root) => mpi.size > 1 && mpi.bcast(buf, root),
    barrier: () => mpi.size > 1 && mpi.barrier(),
    finalize: () => mpi.finalize(),
  };
};

/** A one-rank communicator (no MPI): every collective is the identity; it still counts. */
export const loopback = (): Communicator => {
  const stats = { allreduces: 0, floats: 0 };
  return {
    rank: 0,
    size: 1,
    stats,
    allreduceSum: (buf) => {
      stats.allreduces++;
      stats.floats += buf.length;
    },
    bcast: () => {},
    barrier: () => {},
    finalize: () => {},
  };
};

/** Rank 0's string on every rank (UTF-8, at most `maxBytes`). */
export const bcastString = (s: string, comm: Communicator, maxBytes = 4096): string => {
  const buf = new Uint8Array(maxBytes + 4);
  if (comm.rank === 0) {
    const bytes = new TextEncoder().encode(s);
    if (bytes.length > maxBytes) {
      throw new Error(`bcastString: ${bytes.length} bytes; expected at most ${maxBytes}`);
    }
    new DataView(buf.buffer).setUint32(0, bytes.length);
    buf.set(bytes, 4);
  }
  comm.bcast(buf, 0);
  const n = new DataView(buf.buffer).getUint32(0);
  return new TextDecoder().decode(buf.subarray(4, 4 + n));
};

/**
 * Rank 0's bytes (or null) on every rank: a file read on rank 0 reaches ranks on machines that do
 * not share its file system.
 */
export const bcastBytes = (bytes: Uint8Array | null, comm: Communicator): Uint8Array | null => {
  const head = new Uint8Array(9);
  const view = new DataView(head.buffer);
  if (comm.rank === 0) {
    head[0] = bytes === null ? 0 : 1;
    view.setFloat64(1, bytes?.length ?? 0);
  }
  comm.bcast(head, 0);
  if (head[0] === 0) return null;
  const buf = comm.rank === 0 ? bytes! : new Uint8Array(view.getFloat64(1));
  comm.bcast(buf, 0);
  return buf;
};
