/*
 * One client connection of the load generator: a non-blocking TCP socket
 * (optionally TLS through OpenSSL) that speaks either WebSocket (RFC 6455,
 * client side) or plain HTTP/1.1 for POST publishing. Written for holding
 * 100,000+ sockets cheaply: an idle open connection owns no buffers at all;
 * reads go through one per-worker scratch buffer and only a partial frame
 * or unsent output is copied into the connection.
 */
#ifndef LG_CONN_H
#define LG_CONN_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed ws://, wss://, http:// or https:// URL with a numeric IPv4 address. */
typedef struct lg_url {
    int tls;  /* wss or https */
    int http; /* http(s): POST target rather than a WebSocket */
    struct sockaddr_in addr;
    char hostport[128]; /* for the Host header */
    char host[96];      /* for SNI */
    char path[256];
} lg_url;

/** Parse `s` into `u`, resolving a host name once. Returns 0 or -1. */
int lg_url_parse(const char *s, lg_url *u);

typedef enum {
    LG_CONN_IDLE = 0,   /* no socket */
    LG_CONN_CONNECTING, /* TCP connect in progress */
    LG_CONN_TLS,        /* TLS handshake in progress */
    LG_CONN_UPGRADING,  /* upgrade request sent, waiting for 101 */
    LG_CONN_OPEN,       /* WebSocket open, or HTTP connection ready */
    LG_CONN_CLOSING     /* close frame sent */
} lg_conn_state;

struct lg_loop;
struct lg_conn;

/** What the connection's owner hears about. Each may be NULL. */
typedef struct lg_conn_cbs {
    void (*open_cb)(struct lg_conn *c);
    /* One complete text (or binary) message, or one HTTP response body. */
    void (*text_cb)(struct lg_conn *c, const char *p, size_t n);
    /* The connection is gone; `code` is the close code, or 0 on a network error. */
    void (*close_cb)(struct lg_conn *c, int code, const char *why);
    /* HTTP: the status of one response (its body goes to text_cb first). */
    void (*http_cb)(struct lg_conn *c, int status);
} lg_conn_cbs;

typedef struct lg_conn {
    int fd;
    uint8_t state;
    uint8_t epoll_out;      /* EPOLLOUT currently armed */
    uint8_t tls_want_write; /* the TLS layer needs writability to progress */
    uint8_t in_read;        /* inside a read: the input buffer outlives a close */
    uint8_t closed_in_read; /* closed during that read: free rbuf afterwards */
    uint32_t rlen, rcap;    /* unparsed input kept between reads */
    uint32_t wlen, woff, wcap;
    uint32_t flen; /* reassembled part of a fragmented message */
    char *rbuf, *wbuf, *fbuf;
    SSL *ssl;
    const lg_url *url;
    struct lg_loop *loop;
    void *owner;           /* the worker's per-connection record */
    uint32_t http_pending; /* HTTP: requests sent and not yet answered */
} lg_conn;

/** Per-worker state shared by its connections. */
typedef struct lg_loop {
    int epfd;
    SSL_CTX *ssl_ctx; /* created on first TLS use */
    const lg_conn_cbs *cbs;
    char *scratch; /* reads */
    size_t scratch_cap;
    char *wscratch; /* frames being built; separate because sends happen inside reads */
    size_t wscratch_cap;
    uint64_t rng;
    uint64_t bytes_in, bytes_out;
} lg_loop;

/** Create the epoll set and scratch buffer. Returns 0 or -1. */
int lg_loop_init(lg_loop *l, const lg_conn_cbs *cbs);
void lg_loop_free(lg_loop *l);

/**
 * Start connecting `c` (state IDLE) to `url` from source address `src`
 * (network byte order; 0 lets the kernel choose). Returns 0 when the connect
 * is under way, -1 on an immediate failure (close_cb is not called then).
 */
int lg_conn_start(lg_loop *l, lg_conn *c, const lg_url *url, uint32_t src);

/** Handle readiness reported by epoll for `c`. May call any callback. */
void lg_conn_event(lg_conn *c, uint32_t events);

/**
 * Send one text message (WebSocket) or one POST with body `p` (HTTP).
 * Queues what the socket does not take now. Returns 0, or -1 when the
 * connection failed (close_cb has run).
 */
int lg_conn_send(lg_conn *c, const char *p, size_t n);
/** HTTP connections: POST `p` to `path` (instead of the URL's own). Returns 0 or -1. */
int lg_conn_post(lg_conn *c, const char *path, const char *p, size_t n);

/** Send a close frame with `code` and close the socket without waiting; no callback. */
void lg_conn_close(lg_conn *c, int code);

/** Bytes queued and not yet written. */
static inline uint32_t lg_conn_pending(const lg_conn *c)
{
    return c->wlen - c->woff;
}

#endif
