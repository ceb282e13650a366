/*
 * The client side of dispatch: a WebSocket session from open to close, and
 * every frame a client sends, routed to the feature that handles it.
 */
#ifndef RELAY_CLIENT_H
#define RELAY_CLIENT_H

#include "relay.h"
#include "relay_conn.h"

#include <stdbool.h>
#include <stddef.h>

/** A session opened (LWS_CALLBACK_ESTABLISHED): `c` is lws's per-session memory. */
void relay_client_open(relay *r, relay_conn *c, struct lws *wsi);
/** The session closed: leave its rooms and release it; lws frees the memory. */
void relay_client_closed(relay_conn *c);
/** A received fragment (LWS_CALLBACK_RECEIVE). Returns -1 to close now. */
int relay_client_receive(relay_conn *c, const void *in, size_t len, bool binary, bool final);
/** The session timer fired (hello timeout or token expiry). */
void relay_client_timer(relay_conn *c);
/**
 * The socket can take more (LWS_CALLBACK_SERVER_WRITEABLE): write what is
 * queued, then queue more of a history replay. Returns -1 to close now.
 */
int relay_client_writable(relay_conn *c);
/** Periodic: joins of rooms whose subscriptions were not confirmed in time fail. */
void relay_client_tick(relay *r);
/** Answer the joins and publishes whose backend hooks have decided (lws thread, on a wake-up). */
void relay_client_hooks_take(relay *r);
/** Forget the joins still waiting for a hook (shutdown, after every connection closed). */
void relay_client_hooks_free(relay *r);

#endif
