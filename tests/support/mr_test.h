/*
 * Test support: free loopback ports, child processes (real servers started
 * by the tests), polling with deadlines, a tiny blocking HTTP GET, and a raw
 * WebSocket client that can send exactly the bytes a test wants, malformed
 * ones included.
 */
#ifndef MR_TEST_H
#define MR_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** A port on 127.0.0.1 that was free a moment ago. */
int mr_test_free_port(void);
/** A fresh directory under $TMPDIR (or /tmp); the caller may rm -rf it. */
char *mr_test_tmpdir(const char *tag);
/** Write `text` to `path` (truncating). Returns 0 or -1. */
int mr_test_write_file(const char *path, const char *text);
/** The whole file as a malloc'd string ("" when it cannot be read). */
char *mr_test_read_file(const char *path);

/**
 * Start argv[0] with stdout and stderr appended to `logpath`. Aborts the test
 * when the program cannot be started. The child dies with the test process.
 */
pid_t mr_test_spawn(char *const argv[], const char *logpath);
/** Send `sig` and reap within `timeout_ms` (SIGKILL after that). Returns the wait status. */
int mr_test_stop(pid_t pid, int sig, int timeout_ms);
/** True while `pid` is alive (not reaped, not a zombie). */
bool mr_test_alive(pid_t pid);
/** Wait for a child to exit within `timeout_ms`; returns the status or -1 on time-out. */
int mr_test_wait_exit(pid_t pid, int timeout_ms);

/** Poll until a TCP connect to host:port succeeds or `timeout_ms` passes. */
int mr_test_wait_port(const char *host, int port, int timeout_ms);
/**
 * Blocking HTTP/1.0 request; `headers` are extra "Name: value\r\n" lines (or
 * NULL). Returns the status (or -1) and the body in a malloc'd string.
 */
int mr_test_http(const char *host, int port, const char *method, const char *path,
                 const char *headers, const char *req_body, char **body);
/** Blocking HTTP/1.0 GET; returns the status code (or -1) and the body in a malloc'd string. */
int mr_test_http_get(const char *host, int port, const char *path, char **body);
/** The value of an unlabelled metric on 127.0.0.1:`admin_port`/metrics, or -1. */
long mr_test_metric(int admin_port, const char *name);

typedef struct ssl_ctx_st SSL_CTX;
/**
 * HTTP/1.1 pipelining: connect to 127.0.0.1:`port` (through TLS with `tls`,
 * or NULL for plain TCP), send `requests` (several requests back to back) in
 * one write and read until `want` complete responses (Content-Length bodies)
 * arrived or `timeout_ms` passed. Returns how many arrived; their statuses
 * go to `status` (room for `want`).
 */
int mr_test_http_pipelined(int port, SSL_CTX *tls, const char *requests, int want, int *status,
                           int timeout_ms);

struct Suite;
struct TCase;
/** Run every case of `s` (Check's default fork mode); returns the process exit status. */
int mr_test_run(struct Suite *s);
/**
 * Add a case of one test with its own fixture (set up and torn down around
 * the test, in the test's process) and a time-out in seconds.
 */
struct TCase *mr_test_case(struct Suite *s, const char *name, void (*setup)(void),
                           void (*teardown)(void), int timeout_s);

/**
 * Make the processes this test starts from now on see a wall clock stepped
 * back by `seconds` (tests/support/mr_test_clockstep.c, through LD_PRELOAD
 * in the environment they inherit); 0 undoes it. For tests that durations
 * are measured on a monotonic clock.
 */
void mr_test_clockstep_env(long seconds);

/** Monotonic milliseconds. */
int64_t mr_test_now_ms(void);
/**
 * SIGSTOP `pid` and wait until every one of its threads is stopped: kill()
 * only queues the signal, and a thread running on the other core goes on a
 * little while (a nats-server could still answer a request sent right
 * after). Aborts the test when it is not stopped within 2 s.
 */
void mr_test_stop_process(pid_t pid);

/* A nats-server started for one test. */
typedef struct mr_test_nats {
    pid_t pid;
    int port;
    char url[64];
    char *dir;
    char log[512];
    bool locked; /* TLS (mutual) and nkey users with Meridian's permissions */
    bool jetstream;
    char conf[600];          /* locked: its config file */
    struct mr_test_pki *pki; /* locked: CA and certificates, in dir */
} mr_test_nats;

/** Start nats-server on a free port (JetStream on when `jetstream`). Aborts the test on failure. */
void mr_test_nats_start(mr_test_nats *n, bool jetstream);
/**
 * Start nats-server locked as a deployment runs it: TLS with client
 * certificates required, and one nkey user per role of every region in
 * `regions` with the permissions of mr_nats_perms.h (account MERIDIAN).
 * Daemons connect with mr_test_nats_json(). Aborts the test on failure.
 */
void mr_test_nats_start_locked(mr_test_nats *n, bool jetstream, const char *const *regions,
                               size_t nregions);
/**
 * The `nats` value (JSON, malloc'd) of a daemon config: `["URL"]` for a plain
 * server; for a locked one the URL, the nkey seed of `role` ("relay",
 * "control" or "healthcheck") in `region`, and TLS with the test CA and
 * client certificate.
 */
char *mr_test_nats_json(const mr_test_nats *n, const char *role, const char *region);
/** Start again on the same port and store directory (after a stop). */
void mr_test_nats_restart(mr_test_nats *n);
void mr_test_nats_stop(mr_test_nats *n);

/* Raw WebSocket client. */
typedef struct mr_ws {
    int fd;
    char *rbuf;
    size_t rlen, rcap;
} mr_ws;

/** Connect and upgrade. `extra_headers` ("Origin: x\r\n"...) may be NULL. Returns the HTTP status
 * (101 on success) or -1. */
int mr_ws_connect(mr_ws *ws, const char *host, int port, const char *extra_headers);
/** Send one frame with the given opcode (1 text, 2 binary, 8 close, 9 ping), masked as a client
 * must. */
int mr_ws_send_frame(mr_ws *ws, int opcode, const void *payload, size_t len);
int mr_ws_send_text(mr_ws *ws, const char *text);
/**
 * Receive one frame within `timeout_ms`. Returns the opcode, with the payload
 * in a malloc'd NUL-terminated *out; for a close frame *close_code is set.
 * Pings are answered and skipped. Returns -1 on time-out, -2 when the
 * connection is closed without a close frame.
 */
int mr_ws_recv(mr_ws *ws, int timeout_ms, char **out, size_t *len, int *close_code);
/**
 * Receive text frames until one contains `needle` (a substring); returns that
 * frame (malloc'd) or NULL after `timeout_ms` or on close.
 */
char *mr_ws_expect(mr_ws *ws, const char *needle, int timeout_ms);
/** Wait for the close frame; returns its code, 1006 on abrupt close, -1 on time-out. */
int mr_ws_wait_close(mr_ws *ws, int timeout_ms);
void mr_ws_close(mr_ws *ws);

#endif
