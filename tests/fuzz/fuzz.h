/* fuzz: the interface of the fuzz targets (tests/fuzz/fuzz_*.c). Each target defines
 * LLVMFuzzerTestOneInput, libFuzzer's entry point, and fuzz_seeds, which hands a few valid
 * inputs made by the project's own encoders to `emit` (the starting points of mutation).
 * Built with clang and QUORUM_FUZZ=ON a target is a libFuzzer binary (scripts/fuzz); otherwise
 * it is linked with driver.c, a deterministic mutation loop that ctest runs on every build. */
#ifndef QUORUM_TESTS_FUZZ_H
#define QUORUM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef void (*fuzz_emit)(void *ctx, const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_seeds(fuzz_emit emit, void *ctx);

/* A failed property: prints what and where, then aborts (a crash the fuzzer reports). */
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond);                                    \
  } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

#endif
