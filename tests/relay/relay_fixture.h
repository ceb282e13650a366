/*
 * A relay without sockets or NATS for unit tests: the state main() sets up,
 * a fake NATS (fake_nats.h), and connections without a socket, whose frames
 * stay queued for the test to read (relay_conn.h).
 */
#ifndef RELAY_FIXTURE_H
#define RELAY_FIXTURE_H

#include "fake_nats.h"
#include "relay.h"
#include "relay_conn.h"

#include <jansson.h>

typedef struct relay_fixture {
    relay r;
    relay_config cfg;
} relay_fixture;

/** Set up `fx` as relay_main does, with config defaults changed by the caller afterwards. */
void fx_init(relay_fixture *fx);
/** Close every connection still open and free everything. */
void fx_free(relay_fixture *fx);
/** A new authenticated connection of `user` (no socket). */
relay_conn *fx_conn(relay_fixture *fx, const char *user);
/** Make `c` a member of `room`, as a join does (without the NATS subscription). */
relay_member *fx_join(relay_fixture *fx, relay_conn *c, const char *room, bool *created);
/** Leave every room and release the connection. */
void fx_close(relay_fixture *fx, relay_conn *c);
/** Frames queued for `c`, as text, oldest first; takes them off the queue. NULL-terminated. */
char **fx_take(relay_conn *c, size_t *n);
void fx_frames_free(char **frames);
/** Take and drop whatever is queued for `c`. */
void fx_discard(relay_conn *c);
/** The i-th frame of `frames` parsed (ck-asserts that it is JSON); json_decref it. */
json_t *fx_json(char **frames, size_t i);
/** A realistic message id: the hash of (room, "user", "m<i>"), as a publish makes them. */
void fx_msg_id(const char *room, int i, char out[MR_MSG_ID_LEN + 1]);
/**
 * A history reply of `room` as the control plane sends it: the stored
 * messages with seqs from..to (ids from fx_msg_id, `data_bytes` of data
 * each), `more` and `last_seq`. Returns malloc'd JSON text.
 */
char *fx_history(const char *room, int from, int to, bool more, int last_seq, size_t data_bytes);
/** A text frame from the client, through the dispatcher, as lws hands it over. */
void fx_client_sends(relay_conn *c, const char *text);
/** The frames queued for `c` as "type[:id]" words separated by spaces; takes them. */
void fx_take_types(relay_conn *c, char *out, size_t cap);
/** Answer the subscription confirmation the relay asked NATS for last. */
void fx_confirm_last(relay_fixture *fx);

#endif
