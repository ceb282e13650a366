/*
 * The NATS side of dispatch: every message and PubAck that libnats queued
 * for the lws thread, routed by subject to the feature that handles it.
 */
#ifndef RELAY_INBOUND_H
#define RELAY_INBOUND_H

#include "relay.h"

/** Take everything queued from NATS and handle it, oldest first (lws thread, after a wake-up). */
void relay_inbound_take(relay *r);
/** Handle one message that arrived on a subscription (lws thread); the caller still owns it. */
void relay_inbound_message(relay *r, natsMsg *msg);

#endif
