/*
 * The receiving half of the message path: fast-path messages and commits
 * from NATS, fanned out to the members of a room on this relay.
 */
#ifndef RELAY_FANOUT_H
#define RELAY_FANOUT_H

#include "relay.h"
#include "relay_out.h"

/** Dispatch one message taken from the NATS queue (lws thread). */
void relay_fanout_inbound(relay *r, natsMsg *msg);
/**
 * Deliver a message published through this relay to the room's members here
 * at once, without waiting for its copy to come back from NATS (that copy is
 * then dropped by identity, like any duplicate).
 */
void relay_fanout_local(relay *r, relay_room *room, const char *msg_id, const mr_buf *frame);
/**
 * Deliver the commit of (msg_id, seq) to the room: a `commit` frame when the
 * relay delivered the message already, else the message itself (`message`
 * is the envelope with "seq").
 */
void relay_fanout_commit(relay *r, relay_room *room, const char *msg_id, int64_t seq,
                         json_t *message);
/** Queue a frame for a member, or hold it while the member is recovering history. */
void relay_member_deliver(relay_member *m, relay_out *o, const char *msg_id);

#endif
