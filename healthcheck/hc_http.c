/*
 * Asynchronous HTTP client for DNS provider APIs and relay admin calls.
 *
 * Each request gets its own evhttp connection (provider writes are rare, so
 * connection reuse buys nothing and a fresh connection cannot inherit a
 * half-broken one's state). The time-out covers connect, send and the whole
 * response; evhttp retries are off so a hanging server costs one time-out,
 * not several. A connection cannot be freed from inside its own request
 * callback, so the free is deferred to the next loop turn.
 */
#include "hc_http.h"
#include "mr_alloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hc_http_call {
    struct event_base *base;
    struct evhttp_connection *conn;
    SSL_CTX *ssl_ctx;
    hc_http_cb cb;
    void *ud;
} hc_http_call;

int hc_http_parse_url(const char *url, int *tls, char *host, size_t hostlen, int *port, char *path,
                      size_t pathlen)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        *tls = 0;
        *port = 80;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        *tls = 1;
        *port = 443;
        p = url + 8;
    } else {
        return -1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535)
            return -1;
        *port = (int)v;
        p = end;
    }
    if (*p && *p != '/')
        return -1;
    snprintf(path, pathlen, "%s", *p ? p : "/");
    return 0;
}

static void free_later(evutil_socket_t fd, short what, void *arg)
{
    hc_http_call *c = arg;
    evhttp_connection_free(c->conn);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    free(c);
}

static void on_done(struct evhttp_request *req, void *arg)
{
    hc_http_call *c = arg;
    if (!req || evhttp_request_get_response_code(req) == 0) {
        c->cb(-1, NULL, 0, "no response (connection refused, reset or timed out)", c->ud);
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        char *body = mr_malloc(n + 1);
        evbuffer_remove(in, body, n);
        body[n] = '\0';
        c->cb(evhttp_request_get_response_code(req), body, n, NULL, c->ud);
        free(body);
    }
    struct timeval zero = {0, 0};
    event_base_once(c->base, -1, EV_TIMEOUT, free_later, c, &zero);
}

static void on_error(enum evhttp_request_error e, void *arg)
{
    /* on_done follows with req == NULL; nothing to do here. */
}

int hc_http_request(struct event_base *base, const char *method, const char *url,
                    const char *const *headers, const char *body, size_t body_len, int timeout_ms,
                    hc_http_cb cb, void *ud, char *err, size_t errlen)
{
    int tls, port;
    char host[256], path[2048];
    if (hc_http_parse_url(url, &tls, host, sizeof host, &port, path, sizeof path) != 0) {
        snprintf(err, errlen, "bad URL \"%s\"", url);
        return -1;
    }
    enum evhttp_cmd_type cmd;
    if (strcmp(method, "GET") == 0)
        cmd = EVHTTP_REQ_GET;
    else if (strcmp(method, "POST") == 0)
        cmd = EVHTTP_REQ_POST;
    else if (strcmp(method, "PATCH") == 0)
        cmd = EVHTTP_REQ_PATCH;
    else if (strcmp(method, "PUT") == 0)
        cmd = EVHTTP_REQ_PUT;
    else if (strcmp(method, "DELETE") == 0)
        cmd = EVHTTP_REQ_DELETE;
    else {
        snprintf(err, errlen, "unsupported method %s", method);
        return -1;
    }
    hc_http_call *c = mr_calloc(1, sizeof *c);
    c->base = base;
    c->cb = cb;
    c->ud = ud;
    struct bufferevent *bev = NULL;
    if (tls) {
        c->ssl_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_default_verify_paths(c->ssl_ctx);
        SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
        SSL *ssl = SSL_new(c->ssl_ctx);
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    c->conn = evhttp_connection_base_bufferevent_new(base, NULL, bev, host, (ev_uint16_t)port);
    if (!c->conn) {
        snprintf(err, errlen, "cannot create a connection to %s:%d", host, port);
        if (c->ssl_ctx)
            SSL_CTX_free(c->ssl_ctx);
        free(c);
        return -1;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(c->conn, &tv);
    evhttp_connection_set_retries(c->conn, 0);
    struct evhttp_request *req = evhttp_request_new(on_done, c);
    evhttp_request_set_error_cb(req, on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    /* The port only when it is not the scheme's default: AWS SigV4 signs
     * the Host header exactly as sent ("route53.amazonaws.com"). */
    char hosthdr[300];
    if (port == (tls ? 443 : 80))
        snprintf(hosthdr, sizeof hosthdr, "%s", host);
    else
        snprintf(hosthdr, sizeof hosthdr, "%s:%d", host, port);
    evhttp_add_header(h, "Host", hosthdr);
    evhttp_add_header(h, "Connection", "close");
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        evhttp_add_header(h, headers[i], headers[i + 1]);
    if (body && body_len) {
        /* evhttp adds Content-Length for POST and PUT only; PATCH needs it too. */
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", body_len);
        evhttp_add_header(h, "Content-Length", cl);
        evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len);
    }
    if (evhttp_make_request(c->conn, req, cmd, path) != 0) {
        snprintf(err, errlen, "cannot send %s %s", method, url);
        evhttp_connection_free(c->conn);
        if (c->ssl_ctx)
            SSL_CTX_free(c->ssl_ctx);
        free(c);
        return -1;
    }
    return 0;
}
