/* tls_reload: owns re-reading a certificate and key when their files change (tls_reload.h). */
#include "proto/tls_reload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

typedef struct file_id {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
} file_id;

struct tls_reload {
  pthread_mutex_t mu; /* handshakes run on every HTTP loop's thread */
  char *cert_file, *key_file;
  file_id cert_id, key_id; /* of the pair in use */
  X509 *leaf;              /* the pair read again, or NULL: the context's own is in use */
  STACK_OF(X509) *chain;
  EVP_PKEY *key;
};

static int id_of(const char *path, file_id *id) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  *id = (file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  return 0;
}

static int same(const file_id *a, const file_id *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

tls_reload *tls_reload_new(const char *cert_file, const char *key_file) {
  tls_reload *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->cert_file = strdup(cert_file);
  r->key_file = strdup(key_file);
  if (!r->cert_file || !r->key_file) {
    tls_reload_free(r);
    return NULL;
  }
  pthread_mutex_init(&r->mu, NULL);
  id_of(cert_file, &r->cert_id); /* (a file gone since: any later one differs) */
  id_of(key_file, &r->key_id);
  return r;
}

static void drop_pair(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key) {
  X509_free(leaf);
  sk_X509_pop_free(chain, X509_free);
  EVP_PKEY_free(key);
}

void tls_reload_free(tls_reload *r) {
  if (!r) return;
  if (r->cert_file && r->key_file) pthread_mutex_destroy(&r->mu);
  drop_pair(r->leaf, r->chain, r->key);
  free(r->cert_file);
  free(r->key_file);
  free(r);
}

/* The certificate file's first certificate, the rest as its chain, and the key, matching.
 * 0, or -1 with nothing kept. */
static int read_pair(const tls_reload *r, X509 **leaf, STACK_OF(X509) **chain, EVP_PKEY **key) {
  *leaf = NULL;
  *chain = sk_X509_new_null();
  *key = NULL;
  BIO *b = BIO_new_file(r->cert_file, "r");
  if (b) {
    *leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    for (X509 *x; *leaf && *chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL));)
      if (!sk_X509_push(*chain, x)) X509_free(x);
    BIO_free(b);
  }
  b = BIO_new_file(r->key_file, "r");
  if (b) {
    *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
  }
  ERR_clear_error(); /* (the end of the chain reads as an error) */
  if (*leaf && *chain && *key && X509_check_private_key(*leaf, *key) == 1) return 0;
  ERR_clear_error();
  drop_pair(*leaf, *chain, *key);
  return -1;
}

int tls_reload_cert_cb(SSL *ssl, void *arg) {
  tls_reload *r = arg;
  pthread_mutex_lock(&r->mu);
  file_id c, k;
  if (id_of(r->cert_file, &c) == 0 && id_of(r->key_file, &k) == 0 &&
      (!same(&c, &r->cert_id) || !same(&k, &r->key_id))) {
    X509 *leaf;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
    if (read_pair(r, &leaf, &chain, &key) == 0) {
      drop_pair(r->leaf, r->chain, r->key);
      r->leaf = leaf;
      r->chain = chain;
      r->key = key;
      r->cert_id = c;
      r->key_id = k;
    }
  }
  if (r->leaf) SSL_use_cert_and_key(ssl, r->leaf, r->key, r->chain, 1);
  pthread_mutex_unlock(&r->mu);
  return 1;
}
