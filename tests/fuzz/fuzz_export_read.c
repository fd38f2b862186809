/* fuzz_export_read: what `quorumctl import` reads from a file the user gives it
 * (ctl/export_read.c). Any text: no crash, no leak, and every entry read is complete (a path,
 * a value for each file, none for a directory). */
#include <stdlib.h>
#include <string.h>

#include "ctl/export_read.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  ctl_export_entry *v = NULL;
  size_t n = 0;
  if (ctl_export_read(text, &v, &n) == 0) {
    for (size_t i = 0; i < n; i++) {
      FUZZ_CHECK(v[i].path != NULL);
      FUZZ_CHECK(v[i].dir ? v[i].value == NULL : v[i].value != NULL);
      FUZZ_CHECK(v[i].dir || v[i].value[v[i].value_len] == 0);
    }
    ctl_export_free(v, n);
  }
  free(text);
  return 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  static const char *texts[] = {
      ("{\"prefix\":\"/app\",\"entries\":[{\"path\":\"\",\"dir\":true},{\"path\":\"/a\",\"value\":\"1\"},"
       "{\"path\":\"/d\",\"dir\":true,\"ttl\":30},{\"path\":\"/d/x\",\"value\":\"a\\u0000b\",\"ttl\":5}]}"),
      "{\"entries\":[]}",
      "{\"entries\":[{\"path\":\"/k\",\"value\":\"\\ud83d\\ude00\"}],\"extra\":{\"nested\":[1,2,{}]}}",
      /* found by the driver: a directory with a value kept it (import ignored it) */
      "{\"entries\":[{\"path\":\"/d\",\"value\":\"x\",\"dir\":true}]}",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    emit(ctx, (const uint8_t *)texts[i], strlen(texts[i]));
}
