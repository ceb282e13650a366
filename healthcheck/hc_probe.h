/*
 * Probes of one relay endpoint. Each probe kind (TCP/TLS connect, GET
 * /readyz, WebSocket upgrade with hello/welcome) lives in its own file behind
 * hc_probe_kind; every probe is bounded by a time-out and reports its
 * latency.
 */
#ifndef HC_PROBE_H
#define HC_PROBE_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct bufferevent;
struct event;

typedef struct hc_probe_target {
    const char *address;   /* IP literal to connect to */
    int port;              /* WebSocket port */
    bool tls;              /* wss:// */
    const char *host;      /* host of ws_url: TLS SNI and Host header */
    const char *path;      /* path of ws_url */
    const char *admin_url; /* base URL for /readyz */
    const char *token;     /* JWT for the hello frame */
    bool tls_verify;       /* verify the certificate chain and name */
} hc_probe_target;

typedef struct hc_probe_result {
    bool ok;
    double latency_ms;
    double cert_days_left; /* TLS only; -1 when there was no certificate */
    char err[200];
} hc_probe_result;

/** Called exactly once per started probe. */
typedef void (*hc_probe_cb)(const hc_probe_result *res, void *ud);

typedef struct hc_probe_kind {
    const char *name; /* "tcp", "readyz", "ws": metric label and status key */
    /** Returns 0 (cb will be called) or -1 with res->err filled (cb never called). */
    int (*start)(struct event_base *base, const hc_probe_target *t, int timeout_ms, hc_probe_cb cb,
                 void *ud, hc_probe_result *res);
} hc_probe_kind;

extern const hc_probe_kind hc_probe_tcp;
extern const hc_probe_kind hc_probe_readyz;
extern const hc_probe_kind hc_probe_ws;

/* ---- shared plumbing for stream probes (hc_probe.c) ---- */

typedef struct hc_probe_io hc_probe_io;
struct hc_probe_io {
    struct event_base *base;
    struct bufferevent *bev;
    struct event *timer;
    int64_t t0_us;
    hc_probe_cb cb;
    void *ud;
    bool finished;
    hc_probe_result res;
    void (*on_connected)(hc_probe_io *io); /* after TCP connect (and TLS handshake) */
    void (*on_read)(hc_probe_io *io);
    void *state; /* owned by the kind; freed with free() */
};

/** Connect to the target (TLS when t->tls). Returns 0 or -1 with res->err filled. */
int hc_probe_io_open(hc_probe_io **out, struct event_base *base, const hc_probe_target *t,
                     int timeout_ms, hc_probe_cb cb, void *ud, void (*on_connected)(hc_probe_io *),
                     void (*on_read)(hc_probe_io *), hc_probe_result *res);
/** Report and release; `fmt` NULL on success. Safe to call more than once. */
void hc_probe_io_finish(hc_probe_io *io, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
