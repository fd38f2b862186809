/* auth_password: how /v2/auth keeps passwords: "pbkdf2-sha256$ITER$SALT$KEY" (hex salt of 16
 * random bytes, hex 32-byte key), made and checked with OpenSSL. etcd keeps bcrypt hashes;
 * nothing outside this file reads the text, so the choice only needs to be slow to guess
 * and already linked in. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"

#define PW_ITER 10000
#define PW_SALT 16
#define PW_KEY 32

static void to_hex(const unsigned char *b, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[2 * n] = 0;
}

static int from_hex(const char *s, size_t n, unsigned char *out) {
  for (size_t i = 0; i < n; i++) {
    int v = 0;
    for (int j = 0; j < 2; j++) {
      char c = s[2 * i + j];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return -1;
      v = v << 4 | d;
    }
    out[i] = (unsigned char)v;
  }
  return 0;
}

static int derive(const char *pw, size_t len, const unsigned char *salt, unsigned iter,
                  unsigned char *key) {
  if (len > 1 << 20) return -1;
  return PKCS5_PBKDF2_HMAC(pw, (int)len, salt, PW_SALT, (int)iter, EVP_sha256(), PW_KEY, key) == 1
             ? 0
             : -1;
}

char *auth_password_hash(const char *password, size_t len) {
  unsigned char salt[PW_SALT], key[PW_KEY];
  if (RAND_bytes(salt, sizeof salt) != 1 || derive(password, len, salt, PW_ITER, key)) return NULL;
  char hs[2 * PW_SALT + 1], hk[2 * PW_KEY + 1];
  to_hex(salt, sizeof salt, hs);
  to_hex(key, sizeof key, hk);
  size_t n = sizeof "pbkdf2-sha256$$$" + 10 + sizeof hs + sizeof hk;
  char *out = malloc(n);
  if (out) snprintf(out, n, "pbkdf2-sha256$%u$%s$%s", PW_ITER, hs, hk);
  return out;
}

bool auth_password_check(const char *hash, const char *password, size_t len) {
  unsigned iter;
  int off = 0;
  if (!hash || sscanf(hash, "pbkdf2-sha256$%u$%n", &iter, &off) != 1 || !off || !iter ||
      iter > 10000000)
    return false;
  const char *s = hash + off;
  if (strlen(s) != 2 * PW_SALT + 1 + 2 * PW_KEY || s[2 * PW_SALT] != '$') return false;
  unsigned char salt[PW_SALT], want[PW_KEY], got[PW_KEY];
  if (from_hex(s, PW_SALT, salt) || from_hex(s + 2 * PW_SALT + 1, PW_KEY, want)) return false;
  if (derive(password, len, salt, iter, got)) return false;
  return CRYPTO_memcmp(got, want, PW_KEY) == 0;
}
