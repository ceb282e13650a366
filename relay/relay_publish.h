/*
 * Durable publishing: a client's publish is acked only once the region's
 * JetStream stream has stored it.
 */
#ifndef RELAY_PUBLISH_H
#define RELAY_PUBLISH_H

#include "mr_proto.h"
#include "relay.h"
#include "relay_nats.h"

struct relay_session;

/**
 * Publish the serialised `message` frame through JetStream on behalf of `s`.
 * Returns 0 (the ack or error comes later), or -1 when it cannot be sent now
 * (the caller answers `unavailable`).
 */
int relay_publish_durable(relay *r, struct relay_session *s, json_t *req_id, const char *subject,
                          const char *room, const char *msg_id, const char *mid, size_t mid_len,
                          const mr_buf *frame, int64_t start_us);
/** Handle a PUBACK item from the NATS queue: ack, retry or fail the publish. */
void relay_publish_outcome(relay *r, relay_inbound *in);
/** Forget every pending publish (shutdown). */
void relay_publish_free_all(relay *r);

#endif
