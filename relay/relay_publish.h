/*
 * Publishing a client's message: checks (membership, rate limit), identity,
 * the NATS publish (core, or JetStream acked on the stream's PubAck), local
 * delivery and the `ack`.
 */
#ifndef RELAY_PUBLISH_H
#define RELAY_PUBLISH_H

#include "mr_proto.h"
#include "relay.h"
#include "relay_conn.h"
#include "relay_nats.h"

#include <stdbool.h>

/** What a publish did, for the caller to tell other features. */
typedef struct relay_published {
    relay_room *room;               /* the room published to */
    char msg_id[MR_MSG_ID_LEN + 1]; /* the message's identity */
    bool delivered;                 /* new here: delivered to this relay's members */
} relay_published;

/**
 * Handle a `publish` frame from `c`. Returns 0 when the message went to NATS
 * (and `out` says what was delivered here), or -1 when it was refused; the
 * client got an `error` then.
 */
int relay_publish(relay *r, relay_conn *c, const mr_frame *f, relay_published *out);
/** A PubAck (or its failure) for a JetStream publish: ack, retry or fail the publish. */
void relay_publish_outcome(relay *r, relay_inbound *in);
/** Forget every pending publish (shutdown). */
void relay_publish_free_all(relay *r);

#endif
