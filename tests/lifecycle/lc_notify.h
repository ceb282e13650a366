/*
 * The systemd side of the lifecycle tests: a unix datagram socket in the
 * place of systemd's notify socket (NOTIFY_SOCKET), the messages a daemon
 * sends to it, and small helpers shared by the lifecycle suites (logs,
 * exit statuses, TLS peers, tokens with a key id).
 */
#ifndef LC_NOTIFY_H
#define LC_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct lc_notify {
    int fd;
    char name[600];  /* the NOTIFY_SOCKET value: a path, or "@name" for an abstract socket */
    char seen[8192]; /* every message received so far, one per line ("|" between lines) */
} lc_notify;

/**
 * Bind the socket (a path in `dir`, or an abstract name when `abstract`) and
 * export NOTIFY_SOCKET, and WATCHDOG_USEC when `watchdog_us` > 0, for the
 * processes the test starts from now on. Aborts the test on failure.
 */
void lc_notify_open(lc_notify *n, const char *dir, bool abstract, long watchdog_us);
void lc_notify_close(lc_notify *n);
/**
 * Wait for a message containing `needle` (a message may hold several
 * "KEY=VALUE" lines); returns true when one came within `timeout_ms`.
 */
bool lc_notify_expect(lc_notify *n, const char *needle, int timeout_ms);
/** Read for `window_ms` and count the messages that contain `needle`. */
int lc_notify_count(lc_notify *n, const char *needle, int window_ms);
/** Drop every message waiting in the socket. */
void lc_notify_drain(lc_notify *n);

/** Poll `path` until it contains `needle`; true when it did within `timeout_ms`. */
bool lc_log_wait(const char *path, const char *needle, int timeout_ms);
/** How many times `needle` occurs in `path` now. */
int lc_log_count(const char *path, const char *needle);

/** Run `argv` to its end (at most 20 s) with output in `log`; its exit status, -1 otherwise. */
int lc_run(char *const argv[], const char *log);
/** Wait up to `timeout_ms` for `pid` to exit; its exit status, -1 otherwise. */
int lc_exit_status(pid_t pid, int timeout_ms);

/** A listening TCP socket on 127.0.0.1:`port` (to make a port taken). */
int lc_listen_on(int port);

/**
 * A TLS handshake with 127.0.0.1:`port`; true when the certificate the
 * server presented is the first one in the PEM file `cert_path`. *ssl_out
 * and *fd_out (when not NULL) keep the connection open for the caller
 * (lc_tls_close); otherwise it is closed.
 */
bool lc_tls_peer_is(int port, const char *cert_path, void **ssl_out, int *fd_out);
void lc_tls_close(void *ssl, int fd);

/** An HS256 token for `sub` (exp in an hour) signed with `secret`, with a "kid" header unless
 * NULL. Signed here with OpenSSL directly, independently of the code under test. */
char *lc_token(const char *secret, const char *kid, const char *sub);

#endif
