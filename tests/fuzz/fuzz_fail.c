/* fuzz_fail: the failure report of FUZZ_CHECK, shared by the driver and libFuzzer builds. */
#include <stdio.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz.h"

_Noreturn void fuzz_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
  abort();
}
