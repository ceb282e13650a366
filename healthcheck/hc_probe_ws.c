/*
 * WebSocket probe: the whole client path of docs/protocol.md. Upgrade
 * (expect 101), send `hello` with the probe token, expect `welcome`, then
 * close politely. A relay that accepts TCP but cannot authenticate or
 * answer (wrong secret, stuck loop) fails here and nowhere else.
 */
#include "hc_probe.h"
#include "mr_alloc.h"
#include "mr_jwt.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ws_state {
    int phase;      /* 0: waiting for the 101 head, 1: waiting for welcome */
    char host[300]; /* Host header: host:port of ws_url */
    char path[512]; /* request path of ws_url */
    char hello[MR_JWT_MAX_LEN + 64];
} ws_state;

static void send_frame(hc_probe_io *io, int opcode, const char *payload, size_t len)
{
    unsigned char hdr[14];
    size_t hl = 2;
    hdr[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[1] = (unsigned char)(0x80 | len);
    } else {
        hdr[1] = 0x80 | 126;
        hdr[2] = (unsigned char)(len >> 8);
        hdr[3] = (unsigned char)len;
        hl = 4;
    }
    /* Clients must mask; the key need not be secret for a probe. */
    static const unsigned char mask[4] = {0x6d, 0x72, 0x68, 0x63};
    memcpy(hdr + hl, mask, 4);
    hl += 4;
    struct evbuffer *out = bufferevent_get_output(io->bev);
    evbuffer_add(out, hdr, hl);
    unsigned char *m = mr_malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        m[i] = (unsigned char)payload[i] ^ mask[i & 3];
    evbuffer_add(out, m, len);
    free(m);
}

static void connected(hc_probe_io *io)
{
    ws_state *s = io->state;
    evbuffer_add_printf(bufferevent_get_output(io->bev),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: bWVyaWRpYW4tcHJvYmUhIQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\nUser-Agent: meridian-healthcheck\r\n\r\n",
                        s->path, s->host);
}

static void on_read(hc_probe_io *io)
{
    ws_state *s = io->state;
    struct evbuffer *in = bufferevent_get_input(io->bev);
    if (s->phase == 0) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (end.pos < 0) {
            if (evbuffer_get_length(in) > 8192)
                hc_probe_io_finish(io, false, "upgrade response head too long");
            return;
        }
        size_t n = (size_t)end.pos + 4;
        char *head = mr_malloc(n + 1);
        evbuffer_remove(in, head, n);
        head[n] = '\0';
        int status = 0;
        bool parsed = sscanf(head, "HTTP/1.1 %d", &status) == 1;
        free(head);
        if (!parsed) {
            hc_probe_io_finish(io, false, "upgrade answer is not an HTTP/1.1 status line");
            return;
        }
        if (status != 101) {
            hc_probe_io_finish(io, false, "upgrade answered %d", status);
            return;
        }
        s->phase = 1;
        send_frame(io, 1, s->hello, strlen(s->hello));
    }
    /* Frames from the server are unmasked: 2-byte head, extended lengths. */
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < 2)
            return;
        unsigned char h[10];
        evbuffer_copyout(in, h, avail < 10 ? avail : 10);
        size_t plen = h[1] & 0x7f, hl = 2;
        if (plen == 126) {
            if (avail < 4)
                return;
            plen = (size_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (plen == 127) {
            hc_probe_io_finish(io, false, "unexpectedly large frame");
            return;
        }
        if (avail < hl + plen)
            return;
        evbuffer_drain(in, hl);
        char *payload = mr_malloc(plen + 1);
        evbuffer_remove(in, payload, plen);
        payload[plen] = '\0';
        int opcode = h[0] & 0x0f;
        if (opcode == 8) {
            int code =
                plen >= 2 ? ((unsigned char)payload[0] << 8 | (unsigned char)payload[1]) : 1005;
            free(payload);
            hc_probe_io_finish(io, false, "closed by the relay with %d before welcome", code);
            return;
        }
        if (opcode == 1 && strstr(payload, "\"welcome\"")) {
            free(payload);
            send_frame(io, 8, "\x03\xe8", 2);
            hc_probe_io_finish(io, true, NULL);
            return;
        }
        if (opcode == 1 && strstr(payload, "\"error\"")) {
            hc_probe_io_finish(io, false, "hello refused: %.150s", payload);
            free(payload);
            return;
        }
        free(payload);
    }
}

static int ws_start(struct event_base *base, const hc_probe_target *t, int timeout_ms,
                    hc_probe_cb cb, void *ud, hc_probe_result *res)
{
    size_t token_len = t->token ? strlen(t->token) : 0;
    if (token_len > MR_JWT_MAX_LEN) {
        snprintf(res->err, sizeof res->err, "probe token longer than %d bytes", MR_JWT_MAX_LEN);
        return -1;
    }
    /* One allocation, released by hc_probe.c with the io. */
    ws_state *s = mr_calloc(1, sizeof *s);
    snprintf(s->host, sizeof s->host, "%s:%d", t->host, t->port);
    snprintf(s->path, sizeof s->path, "%s", t->path && *t->path ? t->path : "/");
    snprintf(s->hello, sizeof s->hello, "{\"type\":\"hello\",\"id\":\"probe\",\"token\":\"%s\"}",
             t->token ? t->token : "");
    hc_probe_io *io;
    if (hc_probe_io_open(&io, base, t, timeout_ms, cb, ud, connected, on_read, res) != 0) {
        free(s);
        return -1;
    }
    /* A connect that failed at once has already been reported. */
    if (io->finished)
        free(s);
    else
        io->state = s;
    return 0;
}

const hc_probe_kind hc_probe_ws = {"ws", ws_start};
