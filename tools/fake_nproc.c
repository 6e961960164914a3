/*
 * An LD_PRELOAD library that makes a process see FAKE_NPROC cores (sysconf and
 * sched_getaffinity), so OpenBLAS, which caps its threads at the cores it sees, runs
 * OPENBLAS_NUM_THREADS = FAKE_NPROC threads on a smaller machine: the same partitioning of every
 * GEMM, and so the same float32 results, as a machine with that many cores (only slower).
 * tools/spread.ts uses it for configurations such as native:t8 (--fake-nproc):
 *
 *   gcc -O2 -shared -fPIC -o runs/fake_nproc.so tools/fake_nproc.c -ldl
 *
 * Without FAKE_NPROC set it changes nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

static int fake(void) {
  const char *e = getenv("FAKE_NPROC");
  return e ? atoi(e) : 0;
}

long sysconf(int name) {
  static long (*real)(int);
  if (!real) real = (long (*)(int))dlsym(RTLD_NEXT, "sysconf");
  int n = fake();
  if (n > 0 && (name == _SC_NPROCESSORS_CONF || name == _SC_NPROCESSORS_ONLN)) return n;
  return real(name);
}

int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set) {
  static int (*real)(pid_t, size_t, cpu_set_t *);
  if (!real) real = (int (*)(pid_t, size_t, cpu_set_t *))dlsym(RTLD_NEXT, "sched_getaffinity");
  int r = real(pid, size, set), n = fake();
  if (r == 0 && n > 0) {
    CPU_ZERO_S(size, set);
    for (int i = 0; i < n; i++) CPU_SET_S(i, size, set);
  }
  return r;
}
