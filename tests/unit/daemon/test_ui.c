/* Unit tests of the web UI's embedded assets (web/embed.cmake -> ui_assets.c, daemon/ui.c):
 * every file is there whole and NUL-terminated, index.html names the other assets with the
 * build's version and nothing outside the daemon, lookups find exactly the names. (Serving
 * over HTTP is tested end to end by tests/integration/test_ui.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "daemon/ui.h"

static const ui_asset *must_find(const char *name) {
  const ui_asset *a = ui_find(name, strlen(name));
  if (!a) fail_msg("asset %s is not embedded", name);
  return a;
}

static void test_assets_whole(void **state) {
  (void)state;
  size_t n = 0;
  for (const ui_asset *a = ui_assets; a->name; a++, n++) {
    assert_true(a->len > 0);
    assert_int_equal(a->data[a->len], 0);                    /* NUL after the bytes */
    assert_int_equal(strlen((const char *)a->data), a->len); /* text: no NUL inside */
    assert_null(strstr((const char *)a->data, "@UI_VERSION@"));
  }
  assert_true(n >= 4);
  must_find("index.html");
  must_find("app.js");
  must_find("app.css");
  must_find("favicon.svg");
}

static void test_version(void **state) {
  (void)state;
  assert_int_equal(strlen(ui_version), 16);
  for (const char *p = ui_version; *p; p++) assert_true(isxdigit((unsigned char)*p));
}

/* Every src= and href= of index.html is a local asset with ?v=VERSION, or a fragment. */
static void test_index_names_local_assets(void **state) {
  (void)state;
  const char *html = (const char *)must_find("index.html")->data;
  int assets = 0;
  for (const char *p = html; (p = strpbrk(p, "sh")) != NULL; p++) {
    size_t skip = !strncmp(p, "src=\"", 5) ? 5 : !strncmp(p, "href=\"", 6) ? 6 : 0;
    if (!skip || (p > html && isalnum((unsigned char)p[-1]))) continue;
    const char *v = p + skip, *end = strchr(v, '"');
    assert_non_null(end);
    if (*v == '#') continue;
    const char *q = memchr(v, '?', (size_t)(end - v));
    if (!q) fail_msg("index.html names %.*s without ?v=", (int)(end - v), v);
    assert_null(memchr(v, ':', (size_t)(end - v))); /* no scheme: nothing from elsewhere */
    assert_non_null(ui_find(v, (size_t)(q - v)));
    assert_true((size_t)(end - q) == 3 + strlen(ui_version));
    assert_memory_equal(q, "?v=", 3);
    assert_memory_equal(q + 3, ui_version, strlen(ui_version));
    assets++;
  }
  assert_true(assets >= 3); /* favicon, stylesheet, script */
}

static void test_find_exact(void **state) {
  (void)state;
  assert_null(ui_find("", 0));
  assert_null(ui_find("app.j", 5));
  assert_null(ui_find("app.jsx", 7));
  assert_null(ui_find("../app.js", 9));
  assert_non_null(ui_find("app.js/extra", 6));
  assert_null(ui_find("embed.cmake", 11)); /* the build scripts are not served */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_assets_whole),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_index_names_local_assets),
      cmocka_unit_test(test_find_exact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
