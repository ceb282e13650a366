/*
 * Offline checks behind every daemon's --check: what a start would trip
 * over that the configuration's syntax does not show. Each check reports
 * into an mr_check tally, one line per finding on stdout ("ok", "note")
 * or stderr ("error"), so --check prints all problems, not just the first.
 */
#ifndef MR_CHECK_H
#define MR_CHECK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mr_check {
    const char *prog; /* prefix of every line: "meridian-relay" */
    int errors;       /* findings that make --check exit 2 */
} mr_check;

/** An error: --check fails. `key` names the configuration key. */
void mr_check_error(mr_check *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** A note: worth knowing, not a configuration error (a port in use now, say). */
void mr_check_note(mr_check *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * `hostport` (the value of `key`) can be bound by this host: the address
 * is one of its own and the port is free. An address the host does not
 * have, or a host name that does not resolve, is an error; a port in use
 * now, or one that needs privileges, is a note (another instance may hold
 * it, systemd may grant CAP_NET_BIND_SERVICE).
 */
void mr_check_bindable(mr_check *c, const char *key, const char *hostport);

/**
 * The certificate chain `cert` and the private key `key` are readable PEM
 * and the key is the certificate's. `what` names the keys ("tls").
 * Returns true when they are.
 */
bool mr_check_tls_pair(mr_check *c, const char *what, const char *cert, const char *key);

/**
 * Load `cert` and `key` into a fresh server context the way the daemons
 * do; on failure fill `err` with the file and OpenSSL's reason. For
 * reloads: a new pair is proven before it replaces the one being served.
 */
bool mr_tls_pair_ok(const char *cert, const char *key, char *err, size_t errlen);

#endif
