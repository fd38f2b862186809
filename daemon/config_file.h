/* config_file: reads etcd 3.4's YAML configuration file (--config-file, ETCD_CONFIG_FILE) with
 * libyaml and hands its settings, one at a time, to config.c, which knows the flags. This module
 * knows the file: YAML 1.1 as etcd reads it (go-yaml v2), keys named as the flags, lists, and
 * the two TLS mappings (client-transport-security, peer-transport-security). */
#ifndef QUORUM_DAEMON_CONFIG_FILE_H
#define QUORUM_DAEMON_CONFIG_FILE_H

#include <stddef.h>
#include <stdint.h>

/* What YAML says a value is. A quoted scalar is a string; a plain one is resolved as YAML 1.1
 * resolves it (so `200` is an int, `yes` a bool, `~` null); an explicit tag wins. */
typedef enum config_yaml_type {
  CONFIG_YAML_NULL,
  CONFIG_YAML_STR,
  CONFIG_YAML_INT,
  CONFIG_YAML_FLOAT,
  CONFIG_YAML_BOOL,
  CONFIG_YAML_LIST, /* a sequence of scalars: text is the items joined by ',' */
} config_yaml_type;

typedef struct config_file_value {
  const char *key;  /* the flag it sets: a top-level key as written, or for a key of the TLS
                     * mappings the flag it stands for ("cert-file", "peer-cert-file", ...);
                     * "client-transport-security.X" for a key of theirs that is no flag's */
  const char *text; /* the value as written (NULL for null) */
  config_yaml_type type;
  unsigned line;    /* 1-based, for messages */
} config_file_value;

/* Called once per setting, in file order (a repeated key: the last one wins). A negative
 * return stops the reading and is returned. */
typedef int (*config_file_fn)(void *arg, const config_file_value *v, char *err, size_t errlen);

/* Reads the file at path. Returns 0, or -errno with a one-line message in err naming the file
 * and line: unreadable, not YAML, not a mapping at the top, a nested mapping or a list of
 * mappings where a value goes. An empty file sets nothing. */
int config_file_read(const char *path, config_file_fn fn, void *arg, char *err, size_t errlen);

/* A YAML 1.1 integer (or a float with an integral value, as etcd's JSON step takes one) as a
 * uint64: 0, -EINVAL (not one, or negative) or -ERANGE. */
int config_file_uint(const config_file_value *v, uint64_t *out);

/* A YAML 1.1 boolean (true/yes/on/y and their opposites, in three cases): 1, 0, or -1. */
int config_file_bool(const config_file_value *v);

#endif
