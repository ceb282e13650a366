/*
 * Draining a relay: clients are asked to reconnect elsewhere, a batch at a
 * time, and the stragglers are closed with 1012 after the grace period.
 */
#ifndef RELAY_DRAIN_H
#define RELAY_DRAIN_H

#include "mr_buf.h"
#include "relay.h"

struct evhttp;

/** Prepare the drain request lock (before the admin thread starts). */
void relay_drain_init(relay *r);
/** Register POST /v1/drain and POST /v1/undrain on the admin server (before it runs). */
void relay_drain_admin_routes(struct evhttp *http, relay *r);
/** On the lws thread after a wake-up: start or cancel a drain that was requested. */
void relay_drain_poll(relay *r);
/** Periodic work (every RELAY_TICK_MS): the next batch of reconnect frames. */
void relay_drain_tick(relay *r);
void relay_drain_free(relay *r);

#endif
