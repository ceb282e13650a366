/*
 * One client WebSocket session: authentication, the frames it sends, and the
 * queue of frames waiting to be written to it.
 */
#ifndef RELAY_SESSION_H
#define RELAY_SESSION_H

#include "mr_buf.h"
#include "mr_ratelimit.h"
#include "relay.h"
#include "relay_out.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Seconds a closing session has to flush its queue before it is disconnected regardless. */
#define RELAY_CLOSE_FLUSH_S 5

typedef struct relay_session {
    relay *r;
    struct lws *wsi;
    struct relay_session *prev, *next; /* relay->sessions */
    uint64_t id;
    char sid[17];
    char ip[48]; /* INET6_ADDRSTRLEN and a little */
    char *user;  /* NULL until hello succeeds */
    json_t *rooms_claim;
    int64_t token_exp;
    relay_member *memberships;
    uint32_t room_count;
    mr_ratelimit rl;
    uint32_t strikes; /* consecutive rate-limited publishes */
    uint32_t bad_frames;
    mr_buf rx; /* reassembly of a fragmented message */
    bool rx_overflow;
    /* Outbound queue: a ring of shared frames. */
    relay_out **q;
    uint32_t qhead, qlen, qcap;
    size_t qbytes;
    /* Close requested: sent once the queue before it is flushed (or at once when `abort`). */
    int close_code;
    const char *close_reason; /* a string literal */
    bool reconnect_sent;
} relay_session;

/** Initialise a session in lws's per-session memory after the upgrade. */
void relay_session_open(relay *r, relay_session *s, struct lws *wsi);
/** Release everything the session holds (memberships, queue); lws frees the struct. */
void relay_session_closed(relay_session *s);
/** Handle a received fragment (called from LWS_CALLBACK_RECEIVE). Returns -1 to close now. */
int relay_session_receive(relay_session *s, const void *in, size_t len, bool binary, bool final);
/** Write queued frames while the socket accepts them. Returns -1 to close the connection. */
int relay_session_writable(relay_session *s);
/** The session timer fired (hello timeout or token expiry). */
void relay_session_timer(relay_session *s);

/** Queue a shared frame (adds a reference). May mark the session as a slow consumer. */
void relay_session_send(relay_session *s, relay_out *o);
/** Queue a frame built in `b`. */
void relay_session_send_buf(relay_session *s, const mr_buf *b);
/** Ask for a close with `code` once what is queued before it is written (`reason`: a literal). */
void relay_session_close(relay_session *s, int code, const char *reason);
/** Queue an error frame, counting it. */
void relay_session_error(relay_session *s, json_t *id, mr_error_code code, const char *message);

#endif
