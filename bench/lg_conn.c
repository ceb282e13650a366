/*
 * Client connections of the load generator: TCP connect from a chosen
 * source address, optional TLS (OpenSSL, non-blocking), the WebSocket
 * upgrade and framing, and a minimal HTTP/1.1 client for POST publishing.
 *
 * Why not libwebsockets: the load generator has to hold 100,000+ sockets
 * in a few processes and receive hundreds of thousands of messages per
 * second on one core beside the server under test. Owning the framing lets
 * an idle connection cost ~100 bytes here (no per-connection buffers), lets
 * reads parse straight out of one scratch buffer, and keeps the generator's
 * own overhead small and predictable.
 *
 * Buffer ownership: rbuf holds input that did not form a complete frame,
 * wbuf holds output the socket did not take, fbuf holds a fragmented message
 * being reassembled. All three are freed as soon as they are empty. A
 * callback may close the connection while its input is being parsed, so a
 * close inside a read leaves rbuf to the read loop (in_read/closed_in_read).
 */
#include "lg_conn.h"

#include "mr_alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LG_SCRATCH   (256 * 1024)
#define LG_MAX_FRAME (16u * 1024 * 1024)
#define LG_MAX_HDR   16384

int lg_url_parse(const char *s, lg_url *u)
{
    memset(u, 0, sizeof *u);
    const char *rest;
    int defport;
    if (strncmp(s, "ws://", 5) == 0) {
        rest = s + 5, defport = 80;
    } else if (strncmp(s, "wss://", 6) == 0) {
        rest = s + 6, defport = 443, u->tls = 1;
    } else if (strncmp(s, "http://", 7) == 0) {
        rest = s + 7, defport = 80, u->http = 1;
    } else if (strncmp(s, "https://", 8) == 0) {
        rest = s + 8, defport = 443, u->http = 1, u->tls = 1;
    } else {
        return -1;
    }
    const char *slash = strchr(rest, '/');
    size_t hp = slash ? (size_t)(slash - rest) : strlen(rest);
    if (hp == 0 || hp >= sizeof u->hostport)
        return -1;
    memcpy(u->hostport, rest, hp);
    snprintf(u->path, sizeof u->path, "%s", slash ? slash : "/");
    char port[16];
    const char *colon = memchr(rest, ':', hp);
    size_t hl = colon ? (size_t)(colon - rest) : hp;
    if (hl == 0 || hl >= sizeof u->host)
        return -1;
    memcpy(u->host, rest, hl);
    u->host[hl] = '\0';
    if (colon)
        snprintf(port, sizeof port, "%.*s", (int)(hp - hl - 1), colon + 1);
    else
        snprintf(port, sizeof port, "%d", defport);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(u->host, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(&u->addr, res->ai_addr, sizeof u->addr);
    freeaddrinfo(res);
    return 0;
}

int lg_loop_init(lg_loop *l, const lg_conn_cbs *cbs)
{
    memset(l, 0, sizeof *l);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -1;
    l->cbs = cbs;
    l->scratch_cap = LG_SCRATCH;
    l->scratch = mr_malloc(l->scratch_cap);
    l->wscratch_cap = 4096;
    l->wscratch = mr_malloc(l->wscratch_cap);
    l->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    return 0;
}

void lg_loop_free(lg_loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->ssl_ctx)
        SSL_CTX_free(l->ssl_ctx);
    free(l->scratch);
    free(l->wscratch);
}

static uint64_t loop_rand(lg_loop *l)
{
    uint64_t x = l->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return l->rng = x;
}

/* ---- low-level I/O ---- */

/* Returns bytes read, 0 on EOF, -1 when it would block, -2 on error. */
static ssize_t io_read(lg_conn *c, char *buf, size_t cap)
{
    if (!c->ssl) {
        ssize_t n = read(c->fd, buf, cap);
        if (n >= 0)
            return n;
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
    }
    int n = SSL_read(c->ssl, buf, (int)(cap > 1 << 30 ? 1 << 30 : cap));
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = 1;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return -2;
    }
}

/* Returns bytes written (0 when it would block) or -1 on error. */
static ssize_t io_write(lg_conn *c, const char *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    }
    int w = SSL_write(c->ssl, buf, (int)n);
    if (w > 0)
        return w;
    switch (SSL_get_error(c->ssl, w)) {
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = 1;
        return 0;
    case SSL_ERROR_WANT_READ:
        return 0;
    default:
        ERR_clear_error();
        return -1;
    }
}

static void set_out(lg_conn *c, int on)
{
    if (c->epoll_out == on || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->epoll_out = (uint8_t)on;
}

static void teardown(lg_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->woff = c->wcap = 0;
    free(c->fbuf);
    c->fbuf = NULL;
    c->flen = 0;
    if (c->in_read) {
        c->closed_in_read = 1;
    } else {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rlen = c->rcap = 0;
    }
    c->state = LG_CONN_IDLE;
    c->epoll_out = 0;
    c->tls_want_write = 0;
    c->http_pending = 0;
}

static void fail(lg_conn *c, int code, const char *why)
{
    teardown(c);
    if (c->loop->cbs->close_cb)
        c->loop->cbs->close_cb(c, code, why);
}

/* Write what is queued. Returns 0, or -1 after failing the connection. */
static int flush(lg_conn *c)
{
    c->tls_want_write = 0;
    while (c->woff < c->wlen) {
        ssize_t w = io_write(c, c->wbuf + c->woff, c->wlen - c->woff);
        if (w < 0) {
            fail(c, 0, "write failed");
            return -1;
        }
        if (w == 0)
            break;
        c->woff += (uint32_t)w;
        c->loop->bytes_out += (uint64_t)w;
    }
    if (c->woff == c->wlen) {
        /* An idle connection keeps no buffer: 100k sockets must stay cheap. */
        free(c->wbuf);
        c->wbuf = NULL;
        c->wlen = c->woff = c->wcap = 0;
    }
    set_out(c, c->woff < c->wlen || c->tls_want_write);
    return 0;
}

/* Write `p` now if nothing is queued ahead of it; keep the rest. */
static int queue_out(lg_conn *c, const char *p, size_t n)
{
    if (c->wlen == c->woff) {
        while (n > 0) {
            ssize_t w = io_write(c, p, n);
            if (w < 0) {
                fail(c, 0, "write failed");
                return -1;
            }
            if (w == 0)
                break;
            c->loop->bytes_out += (uint64_t)w;
            p += w, n -= (size_t)w;
        }
        if (n == 0)
            return 0;
    }
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff, c->woff = 0;
        }
        if (c->wlen + n > c->wcap) {
            size_t cap = c->wcap ? c->wcap : 1024;
            while (cap < c->wlen + n)
                cap *= 2;
            c->wbuf = mr_realloc(c->wbuf, cap);
            c->wcap = (uint32_t)cap;
        }
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += (uint32_t)n;
    set_out(c, 1);
    return 0;
}

/* ---- WebSocket handshake ---- */

/*
 * The Sec-WebSocket-Key is derived from the connection's address, so the
 * expected Sec-WebSocket-Accept can be recomputed without storing the key.
 */
static void ws_key(const lg_conn *c, char out[32])
{
    uint64_t k[2] = {(uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15ull, (uint64_t)c->fd + 0x51ed27};
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)k, 16);
}

static int ws_accept_ok(const lg_conn *c, const char *hdr, size_t n)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char key[32], cat[96];
    ws_key(c, key);
    int cl = snprintf(cat, sizeof cat, "%s%s", key, guid);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, (size_t)cl, sha);
    char want[40];
    EVP_EncodeBlock((unsigned char *)want, sha, SHA_DIGEST_LENGTH);
    const char *h = memmem(hdr, n, "ec-WebSocket-Accept:", 20);
    if (!h)
        return 0;
    h += 20;
    while (*h == ' ')
        h++;
    return strncmp(h, want, strlen(want)) == 0;
}

static void send_upgrade(lg_conn *c)
{
    char key[32], req[768];
    ws_key(c, key);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     c->url->path, c->url->hostport, key);
    c->state = LG_CONN_UPGRADING;
    queue_out(c, req, (size_t)n);
}

/* The transport is up (TCP, then TLS when asked): start the application. */
static void transport_ready(lg_conn *c)
{
    if (c->url->http) {
        c->state = LG_CONN_OPEN;
        set_out(c, 0);
        if (c->loop->cbs->open_cb)
            c->loop->cbs->open_cb(c);
        return;
    }
    set_out(c, 0);
    send_upgrade(c);
}

static void tls_step(lg_conn *c)
{
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        c->tls_want_write = 0;
        transport_ready(c);
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        set_out(c, 0);
        return;
    case SSL_ERROR_WANT_WRITE:
        set_out(c, 1);
        return;
    default: {
        unsigned long e = ERR_get_error();
        char why[160];
        snprintf(why, sizeof why, "TLS handshake: %s", e ? ERR_reason_error_string(e) : "failed");
        ERR_clear_error();
        fail(c, 0, why);
    }
    }
}

static int tls_begin(lg_conn *c)
{
    lg_loop *l = c->loop;
    if (!l->ssl_ctx) {
        l->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!l->ssl_ctx)
            return -1;
        /*
         * The benchmark talks to self-signed loopback servers; it measures
         * the cost of TLS, not the PKI. RELEASE_BUFFERS keeps idle TLS
         * connections small on this side.
         */
        SSL_CTX_set_verify(l->ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(l->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                         SSL_MODE_RELEASE_BUFFERS);
    }
    c->ssl = SSL_new(l->ssl_ctx);
    if (!c->ssl)
        return -1;
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, c->url->host);
    c->state = LG_CONN_TLS;
    tls_step(c);
    return 0;
}

int lg_conn_start(lg_loop *l, lg_conn *c, const lg_url *url, uint32_t src)
{
    c->loop = l;
    c->url = url;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (src) {
        /*
         * Bind the source address but let connect() pick the port: with
         * IP_BIND_ADDRESS_NO_PORT the kernel may reuse a port for different
         * destinations, and each 127.x.y.z brings its own ~28k ports.
         */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = src};
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            goto err;
    }
    if (connect(c->fd, (const struct sockaddr *)&url->addr, sizeof url->addr) != 0 &&
        errno != EINPROGRESS)
        goto err;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto err;
    c->epoll_out = 1;
    c->state = LG_CONN_CONNECTING;
    return 0;
err : {
    int e = errno;
    close(c->fd);
    c->fd = -1;
    errno = e;
    return -1;
}
}

/* ---- input parsing ---- */

static void deliver(lg_conn *c, const char *p, size_t n)
{
    if (c->loop->cbs->text_cb)
        c->loop->cbs->text_cb(c, p, n);
}

static int send_frame(lg_conn *c, int opcode, const char *p, size_t n);

/*
 * Parse complete WebSocket frames from p[0..n). Returns the bytes consumed;
 * stops early (returning what it consumed) when a callback closed `c`.
 */
static size_t parse_frames(lg_conn *c, char *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 2 && c->state >= LG_CONN_OPEN) {
        unsigned char b0 = (unsigned char)p[off], b1 = (unsigned char)p[off + 1];
        int fin = b0 & 0x80, op = b0 & 0x0f, masked = b1 & 0x80;
        uint64_t len = b1 & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n - off < 4)
                break;
            len = ((uint64_t)(unsigned char)p[off + 2] << 8) | (unsigned char)p[off + 3];
            hl = 4;
        } else if (len == 127) {
            if (n - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | (unsigned char)p[off + 2 + i];
            hl = 10;
        }
        if (len > LG_MAX_FRAME) {
            fail(c, 0, "frame too large");
            return off;
        }
        size_t mo = hl;
        if (masked)
            hl += 4;
        if (n - off < hl + len)
            break;
        char *pl = p + off + hl;
        if (masked)
            for (uint64_t i = 0; i < len; i++)
                pl[i] = (char)(pl[i] ^ p[off + mo + (i & 3)]);
        off += hl + len;
        switch (op) {
        case 0x1:
        case 0x2:
            if (fin) {
                deliver(c, pl, len);
            } else {
                free(c->fbuf);
                c->fbuf = mr_malloc(len ? len : 1);
                memcpy(c->fbuf, pl, len);
                c->flen = (uint32_t)len;
            }
            break;
        case 0x0:
            if (!c->fbuf)
                break;
            if (c->flen + len > LG_MAX_FRAME) {
                fail(c, 0, "message too large");
                return off;
            }
            c->fbuf = mr_realloc(c->fbuf, c->flen + len + 1);
            memcpy(c->fbuf + c->flen, pl, len);
            c->flen += (uint32_t)len;
            if (fin) {
                char *m = c->fbuf;
                size_t ml = c->flen;
                c->fbuf = NULL, c->flen = 0;
                deliver(c, m, ml);
                free(m);
            }
            break;
        case 0x8: {
            int code = len >= 2 ? (((unsigned char)pl[0] << 8) | (unsigned char)pl[1]) : 1005;
            char why[128];
            snprintf(why, sizeof why, "closed by server: %.*s", (int)(len > 2 ? len - 2 : 0),
                     pl + 2);
            if (c->state == LG_CONN_OPEN && send_frame(c, 0x8, pl, len >= 2 ? 2 : 0) != 0)
                return off;
            fail(c, code, why);
            return off;
        }
        case 0x9:
            if (send_frame(c, 0xA, pl, len) != 0)
                return off;
            break;
        default:
            break;
        }
    }
    return off;
}

/* Parse pipelined HTTP responses; returns bytes consumed. */
static size_t parse_http(lg_conn *c, char *p, size_t n)
{
    size_t off = 0;
    while (off < n && c->state == LG_CONN_OPEN) {
        char *h = p + off;
        size_t avail = n - off;
        char *end = memmem(h, avail, "\r\n\r\n", 4);
        if (!end) {
            if (avail > LG_MAX_HDR)
                fail(c, 0, "HTTP header too large");
            break;
        }
        size_t hlen = (size_t)(end - h) + 4;
        int status = 0;
        if (avail < 12 || sscanf(h, "HTTP/1.%*d %d", &status) != 1) {
            fail(c, 0, "bad HTTP response");
            break;
        }
        size_t blen = 0;
        char *body = h + hlen;
        char *cl = memmem(h, hlen, "ontent-Length:", 14);
        if (!cl)
            cl = memmem(h, hlen, "ontent-length:", 14);
        if (cl) {
            blen = strtoul(cl + 14, NULL, 10);
            if (avail - hlen < blen)
                break;
        } else if (memmem(h, hlen, "chunked", 7)) {
            /* Good enough for short replies: wait for the last chunk. */
            char *z = memmem(body, avail - hlen, "0\r\n\r\n", 5);
            if (!z)
                break;
            blen = (size_t)(z - body) + 5;
        }
        off += hlen + blen;
        if (c->http_pending > 0)
            c->http_pending--;
        deliver(c, body, blen);
        if (c->state != LG_CONN_OPEN)
            break;
        if (c->loop->cbs->http_cb)
            c->loop->cbs->http_cb(c, status);
    }
    return off;
}

static size_t consume(lg_conn *c, char *p, size_t n)
{
    size_t off = 0;
    if (c->state == LG_CONN_UPGRADING) {
        char *end = memmem(p, n, "\r\n\r\n", 4);
        if (!end) {
            if (n > LG_MAX_HDR)
                fail(c, 0, "upgrade response too large");
            return 0;
        }
        size_t hlen = (size_t)(end - p) + 4;
        if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
            char why[96];
            snprintf(why, sizeof why, "upgrade refused: %.*s", (int)(hlen > 40 ? 40 : hlen - 4), p);
            fail(c, 0, why);
            return hlen;
        }
        if (!ws_accept_ok(c, p, hlen)) {
            fail(c, 0, "bad Sec-WebSocket-Accept");
            return hlen;
        }
        c->state = LG_CONN_OPEN;
        off = hlen;
        if (c->loop->cbs->open_cb)
            c->loop->cbs->open_cb(c);
        if (c->state != LG_CONN_OPEN)
            return off;
    }
    if (c->url->http)
        return off + parse_http(c, p + off, n - off);
    return off + parse_frames(c, p + off, n - off);
}

static void do_read(lg_conn *c)
{
    lg_loop *l = c->loop;
    c->in_read = 1;
    /* Plain sockets are level-triggered: a few reads, then let others run. */
    int budget = c->ssl ? 1 << 20 : 8;
    while (budget-- > 0 && c->state != LG_CONN_IDLE) {
        ssize_t r;
        if (c->rlen > 0) {
            if (c->rcap - c->rlen < 16384) {
                c->rcap = c->rcap * 2 < c->rlen + 16384 ? c->rlen + 16384 : c->rcap * 2;
                c->rbuf = mr_realloc(c->rbuf, c->rcap);
            }
            r = io_read(c, c->rbuf + c->rlen, c->rcap - c->rlen);
            if (r > 0) {
                l->bytes_in += (uint64_t)r;
                c->rlen += (uint32_t)r;
                size_t used = consume(c, c->rbuf, c->rlen);
                if (c->closed_in_read)
                    break;
                c->rlen -= (uint32_t)used;
                if (c->rlen > 0) {
                    memmove(c->rbuf, c->rbuf + used, c->rlen);
                } else {
                    free(c->rbuf);
                    c->rbuf = NULL;
                    c->rcap = 0;
                }
            }
        } else {
            r = io_read(c, l->scratch, l->scratch_cap);
            if (r > 0) {
                l->bytes_in += (uint64_t)r;
                size_t used = consume(c, l->scratch, (size_t)r);
                if (c->closed_in_read || c->state == LG_CONN_IDLE)
                    break;
                if (used < (size_t)r) {
                    c->rlen = (uint32_t)((size_t)r - used);
                    c->rcap = c->rlen + 16384;
                    c->rbuf = mr_malloc(c->rcap);
                    memcpy(c->rbuf, l->scratch + used, c->rlen);
                }
            }
        }
        if (r == 0) {
            fail(c, 1006, "connection closed by peer");
            break;
        }
        if (r == -2) {
            fail(c, 0, "read failed");
            break;
        }
        if (r == -1)
            break;
        /*
         * A short read on a plain socket means the kernel queue is empty:
         * skip the read that would only say EAGAIN (level-triggered epoll
         * reports anything that arrives later). TLS may hold decrypted
         * bytes epoll cannot see, so it reads until WANT_READ.
         */
        if (!c->ssl && (size_t)r < (c->rlen > 0 ? 16384 : l->scratch_cap))
            break;
    }
    c->in_read = 0;
    if (c->closed_in_read) {
        c->closed_in_read = 0;
        if (c->state == LG_CONN_IDLE) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rlen = c->rcap = 0;
        }
    }
}

void lg_conn_event(lg_conn *c, uint32_t events)
{
    if (c->state == LG_CONN_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            char why[96];
            snprintf(why, sizeof why, "connect: %s", strerror(err ? err : ECONNREFUSED));
            fail(c, 0, why);
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        if (c->url->tls) {
            if (tls_begin(c) != 0)
                fail(c, 0, "TLS setup failed");
            return;
        }
        transport_ready(c);
        return;
    }
    if (c->state == LG_CONN_TLS) {
        tls_step(c);
        return;
    }
    if ((events & EPOLLOUT) || c->tls_want_write) {
        if (flush(c) != 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        do_read(c);
    if (c->state != LG_CONN_IDLE && c->tls_want_write)
        set_out(c, 1);
}

static int send_frame(lg_conn *c, int opcode, const char *p, size_t n)
{
    lg_loop *l = c->loop;
    size_t need = n + 14;
    if (need > l->wscratch_cap) {
        while (l->wscratch_cap < need)
            l->wscratch_cap *= 2;
        l->wscratch = mr_realloc(l->wscratch, l->wscratch_cap);
    }
    unsigned char *f = (unsigned char *)l->wscratch;
    size_t hl;
    f[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        f[1] = (unsigned char)(0x80 | n);
        hl = 2;
    } else if (n < 65536) {
        f[1] = 0x80 | 126;
        f[2] = (unsigned char)(n >> 8);
        f[3] = (unsigned char)n;
        hl = 4;
    } else {
        f[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            f[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t key = (uint32_t)loop_rand(l);
    memcpy(f + hl, &key, 4);
    hl += 4;
    /* Mask eight bytes at a time; the key repeats every four bytes. */
    uint64_t k8 = (uint64_t)key | ((uint64_t)key << 32);
    unsigned char *dst = f + hl;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k8;
        memcpy(dst + i, &v, 8);
    }
    const unsigned char *kb = (const unsigned char *)&key;
    for (; i < n; i++)
        dst[i] = (unsigned char)p[i] ^ kb[i & 3];
    return queue_out(c, (const char *)f, hl + n);
}

int lg_conn_send(lg_conn *c, const char *p, size_t n)
{
    if (c->state != LG_CONN_OPEN)
        return -1;
    if (!c->url->http)
        return send_frame(c, 0x1, p, n);
    return lg_conn_post(c, c->url->path, p, n);
}

int lg_conn_post(lg_conn *c, const char *path, const char *p, size_t n)
{
    if (c->state != LG_CONN_OPEN || !c->url->http)
        return -1;
    lg_loop *l = c->loop;
    size_t need = n + 512;
    if (need > l->wscratch_cap) {
        while (l->wscratch_cap < need)
            l->wscratch_cap *= 2;
        l->wscratch = mr_realloc(l->wscratch, l->wscratch_cap);
    }
    int hl = snprintf(l->wscratch, l->wscratch_cap,
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, c->url->hostport, n);
    memcpy(l->wscratch + hl, p, n);
    c->http_pending++;
    return queue_out(c, l->wscratch, (size_t)hl + n);
}

void lg_conn_close(lg_conn *c, int code)
{
    if (c->state == LG_CONN_OPEN && !c->url->http && lg_conn_pending(c) == 0) {
        /* Best effort and never a callback: a zero mask key leaves the payload as is. */
        char f[8] = {(char)0x88, (char)0x82, 0, 0, 0, 0, (char)(code >> 8), (char)code};
        if (io_write(c, f, sizeof f) < 0)
            ERR_clear_error();
    }
    if (c->state != LG_CONN_IDLE)
        teardown(c);
}
