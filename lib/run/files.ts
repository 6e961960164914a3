/**
 * File-system helpers of the run layer (tasks, training runs, tools).
 * @module
 */

/** True when `path` exists (file or directory). */
export const exists = async (path: string): Promise<boolean> => {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
};
