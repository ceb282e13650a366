/*
 * Admin HTTP: /healthz, /readyz and /metrics for every daemon, on libevent's
 * evhttp. Daemons with their own event_base attach the routes to their
 * evhttp; the relay, whose main thread belongs to libwebsockets, runs them
 * on a thread of their own.
 */
#ifndef MR_ADMIN_H
#define MR_ADMIN_H

#include "mr_buf.h"

#include <stdbool.h>

struct evhttp;
struct event_base;

/**
 * Readiness callback, called on the admin thread: return true when ready.
 * Append a short JSON object describing the state to `detail` (without a
 * trailing newline), for example {"nats":"connected"}.
 */
typedef bool (*mr_admin_ready_cb)(void *ud, mr_buf *detail);

/**
 * Register /healthz, /readyz and /metrics on an existing evhttp, and a JSON
 * 404 for every other path (evhttp_set_gencb; a caller may replace it).
 */
void mr_admin_attach(struct evhttp *http, mr_admin_ready_cb ready, void *ud);

typedef struct mr_admin_thread mr_admin_thread;

/**
 * Bind `listen` ("host:port") and serve the admin routes on a new thread.
 * `routes` (may be NULL) registers the daemon's own extra routes before the
 * thread starts.
 * Returns NULL and fills `err` when the address cannot be bound.
 */
mr_admin_thread *mr_admin_thread_start(const char *listen, mr_admin_ready_cb ready, void *ud,
                                       void (*routes)(struct evhttp *http, void *ud), char *err,
                                       size_t errlen);
/** The port actually bound (useful with port 0). */
int mr_admin_thread_port(mr_admin_thread *a);
void mr_admin_thread_stop(mr_admin_thread *a);

#endif
