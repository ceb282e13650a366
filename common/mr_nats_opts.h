/*
 * A daemon's `nats` configuration section and what it turns into: the
 * server URLs, the credentials (an nkey seed file, or a user and a password
 * file) and TLS (CA, client certificate and key) applied to libnats'
 * natsOptions, and a watcher that says why a connection is not up
 * ("authorization violation", "TLS: ...", "not reachable") in the logs and
 * in /readyz. Shared by meridian-relay, meridian-control and
 * meridian-healthcheck; every key is documented in docs/relay.md.
 *
 * The section is either the old list of URLs, ["nats://host:4222", ...],
 * or an object:
 *
 *   {"urls": ["nats://10.0.0.5:4222"],
 *    "nkey_seed_file": "/etc/meridian/nats/relay.nk",
 *    "tls": {"ca": "ca.pem", "cert": "relay.pem", "key": "relay.key"}}
 *
 * Credentials come from files, never from URLs: a URL with user:password@
 * is refused, because URLs end up in logs and process listings.
 */
#ifndef MR_NATS_OPTS_H
#define MR_NATS_OPTS_H

#include "mr_buf.h"
#include "mr_config.h"

#include <jansson.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mr_nats_conf {
    char **urls;
    size_t n_urls;
    char *user;           /* with password_file */
    char *password_file;  /* first line is the password */
    char *nkey_seed_file; /* a NATS user seed ("SU..."), see mr_nkey.h */
    bool tls;             /* the tls object was given: connect with TLS */
    char *tls_ca;         /* PEM CA bundle that verifies the servers (default: system store) */
    char *tls_cert;       /* client certificate chain for mutual TLS, with tls_key */
    char *tls_key;
} mr_nats_conf;

/** Empty configuration with one URL, `default_url` (may be NULL: none). */
void mr_nats_conf_init(mr_nats_conf *c, const char *default_url);
void mr_nats_conf_free(mr_nats_conf *c);

/**
 * Read member `key` of `obj` (absent: nothing changes): an array of URLs,
 * a string of comma-separated URLs, or the object form. Type and key errors are recorded in
 * `cfg` under "KEY", "KEY.urls", "KEY.tls.ca", ...; the files themselves are
 * checked by mr_nats_conf_check().
 */
void mr_nats_conf_read(mr_nats_conf *c, mr_cfg *cfg, json_t *obj, const char *key);

/** Replace the URLs with a comma-separated list (the daemons' --nats flag). */
void mr_nats_conf_set_urls(mr_nats_conf *c, const char *csv);

/**
 * The final checks, after the file and the flags: at least one URL, each
 * nats:// or tls:// without credentials in it; user and password_file
 * together, or nkey_seed_file, not both; every file readable; the seed a
 * valid user seed; tls.cert and tls.key together. Returns 0, or -1 with
 * `err` naming the key ("nats.tls.ca: cannot read ...") and never quoting
 * a secret.
 */
int mr_nats_conf_check(const mr_nats_conf *c, const char *key, char *err, size_t errlen);

/**
 * Apply the servers, credentials and TLS to `o`, and log permission
 * violations and slow-consumer errors the server reports (a handler on
 * `o`'s error callback). Reconnection settings stay the caller's. The
 * password and seed are read from their files now (the seed again by
 * libnats at every connect). Returns 0, or -1 with `err` set.
 */
int mr_nats_conf_apply(const mr_nats_conf *c, natsOptions *o, char *err, size_t errlen);

/** Attempts mr_nats_connect makes in the foreground before retrying in the background. */
#define MR_NATS_CONNECT_TRIES 4

/**
 * Connect with `o` as natsConnection_Connect does with RetryOnFailedConnect
 * and `connected_cb`: NATS_OK when connected now, NATS_NOT_YET_CONNECTED
 * when no server answered and libnats keeps trying in the background
 * (`connected_cb` runs once it succeeds), or another error. Unlike it, a
 * first attempt that reached a server but failed in the handshake is tried
 * again at once (MR_NATS_CONNECT_TRIES times), on a new connection: libnats
 * 3.4 would give such a connection up for good (see mr_nats_opts.c).
 * `o`'s RetryOnFailedConnect setting is overwritten.
 */
natsStatus mr_nats_connect(natsConnection **nc, natsOptions *o, natsConnectionHandler connected_cb,
                           void *closure);

/**
 * Whether `s`, returned by a call on `nc` after mr_nats_connect, only says
 * that libnats has given the connection up (a server that refused the
 * handshake): NATS_CONNECTION_CLOSED, or any failure on a connection that
 * is closed by now: a subscription closed under natsSubscription_* calls
 * reads as NATS_INVALID_SUBSCRIPTION. The daemon then runs on, not ready,
 * while the watcher says why.
 */
bool mr_nats_given_up(natsConnection *nc, natsStatus s);

/**
 * Sign a server's connection nonce with the user seed in `seed_file`, as
 * the daemons' connections do. Returns 0, or -1 with `err` set when the file
 * is unusable or when the signature starts with a zero byte, which libnats
 * 3.4 cannot send (the attempt then fails and is retried with a new nonce).
 */
int mr_nats_sign_nonce(const char *seed_file, const char *nonce, unsigned char sig[64], char *err,
                       size_t errlen);

/**
 * Shut libnats down (nats_CloseAndWait) in a way that survives OpenSSL 3:
 * call it instead of nats_Close()/nats_CloseAndWait() (see mr_nats_opts.c).
 */
void mr_nats_lib_close(int64_t timeout_ms);

/** Copy `url` to `out` without any user:password@ part, for logs. */
void mr_nats_url_redact(const char *url, char *out, size_t n);

/** Why a connection is not up. */
typedef enum {
    MR_NATS_UP,          /* connected */
    MR_NATS_UNREACHABLE, /* no server answered (down, wrong address, firewall) */
    MR_NATS_AUTH,        /* a server refused the credentials: "Authorization Violation" */
    MR_NATS_TLS, /* the TLS handshake failed: untrusted certificate, missing client cert... */
    MR_NATS_OTHER
} mr_nats_state;

/**
 * One connection attempt with `c` (each server once, no retry) that is
 * closed again at once: returns MR_NATS_UP or the reason it failed, with a
 * one-line explanation in `why`. libnats does not keep the reason a
 * retrying connection failed, so this is how a daemon learns it.
 */
mr_nats_state mr_nats_probe(const mr_nats_conf *c, int timeout_ms, char *why, size_t n);

/**
 * A thread that watches a daemon's connection: while it is not up it probes
 * (every 2 s), logs each new reason once (authorization and TLS failures as
 * errors) and keeps the reason for mr_nats_watch_describe(). `c` and `nc`
 * must outlive the watcher. Returns NULL when the thread cannot start.
 */
typedef struct mr_nats_watch mr_nats_watch;
mr_nats_watch *mr_nats_watch_start(const mr_nats_conf *c, natsConnection *nc);
/** Stop the thread (before the connection is closed or destroyed). NULL is fine. */
void mr_nats_watch_stop(mr_nats_watch *w);
/** True when connected; otherwise `why` gets the latest reason (any thread). */
bool mr_nats_watch_up(mr_nats_watch *w, char *why, size_t n);
/**
 * Append `"nats":"connected"` when `connected` (the caller's own view, so
 * the text agrees with its readiness), else `"nats":"disconnected"` and,
 * once the watcher knows why, `,"nats_error":"WHY"`, to a JSON object being
 * written (no braces, no leading comma).
 */
void mr_nats_watch_describe(mr_nats_watch *w, bool connected, mr_buf *json);

/**
 * For daemons that must not go on without NATS (the control plane): probe
 * until a server accepts the connection, logging each new reason, or until
 * `*stop` becomes true (then -1). Returns 0 once a probe succeeded.
 */
int mr_nats_wait_reachable(const mr_nats_conf *c, volatile int *stop);

#endif
