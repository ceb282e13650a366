/*
 * Shared plumbing for the stream probes (hc_probe_tcp.c, hc_probe_ws.c): a
 * bufferevent connected to the endpoint, through OpenSSL when the endpoint
 * speaks wss://, and one timer bounding the whole probe. The timer, the
 * connection's error events and the kind's own verdict all end in
 * hc_probe_io_finish(), which reports once and releases on the next loop
 * turn (a bufferevent must not be freed inside its own callback).
 *
 * For TLS endpoints the certificate's remaining validity is measured on
 * every handshake, so an expiring certificate shows up days ahead.
 */
#include "hc_probe.h"
#include "mr_alloc.h"
#include "mr_time.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static SSL_CTX *ssl_ctx_verify, *ssl_ctx_noverify;

static SSL_CTX *ctx_for(bool verify)
{
    SSL_CTX **slot = verify ? &ssl_ctx_verify : &ssl_ctx_noverify;
    if (!*slot) {
        *slot = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_default_verify_paths(*slot);
        SSL_CTX_set_verify(*slot, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    }
    return *slot;
}

static void release(evutil_socket_t fd, short what, void *arg)
{
    hc_probe_io *io = arg;
    if (io->bev)
        bufferevent_free(io->bev);
    event_free(io->timer);
    free(io->state);
    free(io);
}

void hc_probe_io_finish(hc_probe_io *io, bool ok, const char *fmt, ...)
{
    if (io->finished)
        return;
    io->finished = true;
    io->res.ok = ok;
    io->res.latency_ms = (double)(mr_now_us() - io->t0_us) / 1000.0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(io->res.err, sizeof io->res.err, fmt, ap); /* cut if long */
        va_end(ap);
    }
    event_del(io->timer);
    if (io->bev)
        bufferevent_disable(io->bev, EV_READ | EV_WRITE);
    io->cb(&io->res, io->ud);
    struct timeval zero = {0, 0};
    event_base_once(io->base, -1, EV_TIMEOUT, release, io, &zero);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    hc_probe_io *io = arg;
    hc_probe_io_finish(io, false, "timed out");
}

static void measure_cert(hc_probe_io *io)
{
    SSL *ssl = bufferevent_openssl_get_ssl(io->bev);
    if (!ssl)
        return;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert)
        return;
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)))
        io->res.cert_days_left = days + secs / 86400.0;
    X509_free(cert);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    hc_probe_io *io = arg;
    if (what & BEV_EVENT_CONNECTED) {
        measure_cert(io);
        io->on_connected(io);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long ssl_err = bufferevent_get_openssl_error(bev);
        int e = EVUTIL_SOCKET_ERROR();
        if (ssl_err) {
            char buf[160];
            ERR_error_string_n(ssl_err, buf, sizeof buf);
            hc_probe_io_finish(io, false, "TLS: %s", buf);
        } else {
            hc_probe_io_finish(io, false, "%s", evutil_socket_error_to_string(e));
        }
        return;
    }
    if (what & BEV_EVENT_EOF)
        hc_probe_io_finish(io, false, "connection closed by the endpoint");
}

static void on_read_cb(struct bufferevent *bev, void *arg)
{
    hc_probe_io *io = arg;
    if (io->on_read)
        io->on_read(io);
    else
        evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
}

int hc_probe_io_open(hc_probe_io **out, struct event_base *base, const hc_probe_target *t,
                     int timeout_ms, hc_probe_cb cb, void *ud, void (*on_connected)(hc_probe_io *),
                     void (*on_read)(hc_probe_io *), hc_probe_result *res)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
    if (inet_pton(AF_INET, t->address, &sa.sin_addr) != 1) {
        snprintf(res->err, sizeof res->err, "address \"%s\" is not an IPv4 literal", t->address);
        return -1;
    }
    hc_probe_io *io = mr_calloc(1, sizeof *io);
    io->base = base;
    io->t0_us = mr_now_us();
    io->cb = cb;
    io->ud = ud;
    io->on_connected = on_connected;
    io->on_read = on_read;
    io->res.cert_days_left = -1;
    if (t->tls) {
        SSL *ssl = SSL_new(ctx_for(t->tls_verify));
        SSL_set_tlsext_host_name(ssl, t->host);
        if (t->tls_verify)
            SSL_set1_host(ssl, t->host);
        io->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
    } else {
        io->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    io->timer = evtimer_new(base, on_timeout, io);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(io->timer, &tv);
    bufferevent_setcb(io->bev, on_read_cb, NULL, on_event, io);
    bufferevent_enable(io->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(io->bev, (struct sockaddr *)&sa, sizeof sa) != 0) {
        /* An immediate failure (no route, no socket) is still a probe result;
         * report it through the callback like any other. */
        int e = EVUTIL_SOCKET_ERROR();
        hc_probe_io_finish(io, false, "connect: %s", evutil_socket_error_to_string(e));
    }
    *out = io;
    return 0;
}
