/*
 * A small asynchronous HTTP/1.1 client on the agent's libevent loop (evhttp,
 * with bufferevent_openssl for https), every request bounded by a timeout.
 */
#ifndef HC_HTTP_H
#define HC_HTTP_H

#include <stddef.h>

struct event_base;

/**
 * Called once per request. `status` is the HTTP status, or -1 when no
 * response arrived (connect failure, time-out, reset), with `err` saying why.
 */
typedef void (*hc_http_cb)(int status, const char *body, size_t len, const char *err, void *ud);

/**
 * Send `method` to `url` ("http://host:port/path" or https). `headers` is a
 * NULL-terminated list of name, value pairs (may be NULL). Returns 0, or -1
 * with `err` filled when the request could not be started; then `cb` is
 * never called.
 */
int hc_http_request(struct event_base *base, const char *method, const char *url,
                    const char *const *headers, const char *body, size_t body_len, int timeout_ms,
                    hc_http_cb cb, void *ud, char *err, size_t errlen);

/** Split "http://host:port/path"; returns 0 or -1. `tls` tells https. */
int hc_http_parse_url(const char *url, int *tls, char *host, size_t hostlen, int *port, char *path,
                      size_t pathlen);

#endif
