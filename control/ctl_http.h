/*
 * The control plane's HTTP API on the daemon's libevent loop:
 * GET  /v1/rooms/{room}/messages?after=SEQ&before=SEQ&limit=N  (history)
 * POST /v1/rooms/{room}/messages                               (publish)
 * authenticated with Bearer API keys, optionally over TLS 1.3 with HSTS.
 */
#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include "ctl_config.h"
#include "ctl_pool.h"

#include <nats/nats.h>
#include <stddef.h>

struct event_base;
typedef struct ctl_http ctl_http;

/**
 * Bind cfg->http_listen and serve the API. History queries run on
 * `db_pool`, publishes (which wait for the PubAck) on `pub_pool`. Returns
 * NULL with `err` set when TLS files or the address are unusable.
 */
ctl_http *ctl_http_start(struct event_base *base, const ctl_config *cfg, ctl_pool *db_pool,
                         ctl_pool *pub_pool, natsConnection *nc, char *err, size_t errlen);

/** Stop listening and drop open connections. Call before stopping the pools. */
void ctl_http_stop(ctl_http *h);

/**
 * SIGHUP: serve with `cfg`'s API keys, and with its certificate and key
 * when the API runs TLS. The new pair is loaded into a new context first;
 * when that fails nothing changes and -1 comes back with `err` set.
 * Connections already open keep their keys' verdicts and certificates.
 */
int ctl_http_reload(ctl_http *h, const ctl_config *cfg, char *err, size_t errlen);

void ctl_http_metrics_register(void);

#endif
