/*
 * One client connection as the rest of the relay sees it: who it is, the
 * rooms it is in, and the queue of frames waiting to be written to it. Every
 * frame a client receives goes through relay_conn_send; closes and errors
 * too. This is a leaf: it calls nothing above it.
 *
 * A connection without a socket (wsi NULL, as unit tests make them) only
 * queues: its frames stay in the ring for the test to read.
 */
#ifndef RELAY_CONN_H
#define RELAY_CONN_H

#include "mr_buf.h"
#include "mr_ratelimit.h"
#include "relay.h"
#include "relay_out.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Seconds a closing connection has to flush its queue before it is disconnected regardless. */
#define RELAY_CLOSE_FLUSH_S 5
/*
 * After the close frame: how long the client has to answer with its own
 * close, while what it still sends is read and discarded (closing the
 * socket with unread input would reset it, and the client would lose the
 * close frame and see 1006).
 */
#define RELAY_CLOSE_ACK_S 2
/* Most bytes of queued frames written with one send (frames are never split). */
#define RELAY_WRITE_BATCH_BYTES 65536
/* The longest WebSocket header of an unmasked server frame: 2 bytes + 8 of length. */
#define RELAY_WS_HEADER_MAX 10
/*
 * Queue entries kept in the connection itself: what an idle or keeping-up
 * member needs. A burst grows the ring on the heap; it goes back here once
 * written, so a member keeps nothing from a burst (docs/benchmarks.md,
 * memory per joined connection).
 */
#define RELAY_CONN_QUEUE_INLINE 4
/* Characters of a session id (hex of 8 random bytes), shown to clients in `welcome`. */
#define RELAY_SID_LEN 16

typedef struct relay_conn {
    relay *r;
    struct lws *wsi;
    struct relay_conn *prev, *next; /* relay->conns */
    /* relay->flush: frames queued on an empty queue, written when the pass ends */
    struct relay_conn *flush_prev, *flush_next;
    bool flush_listed;
    uint64_t id;
    char sid[RELAY_SID_LEN + 1];
    char ip[48]; /* INET6_ADDRSTRLEN and a little */
    char *user;  /* NULL until hello succeeds */
    json_t *rooms_claim;
    int64_t token_exp;
    int64_t token_at;       /* when the current token was accepted (relay_refresh.c) */
    bool refresh_hinted;    /* `refresh_due` was sent for the current token */
    mr_ratelimit signal_rl; /* signals' own bucket (relay_signal.c), set up at the first */
    bool signal_rl_ready;
    bool no_echo; /* hello's "echo":false: its own publishes are not delivered back to it */
    relay_member *memberships;
    uint32_t room_count;
    mr_ratelimit rl;
    uint32_t strikes; /* consecutive rate-limited publishes */
    uint32_t bad_frames;
    mr_buf rx; /* reassembly of a fragmented message */
    /* Outbound queue: a ring of shared frames, q_inline unless a burst outgrew it. */
    relay_out **q;
    uint32_t qhead, qlen, qcap;
    relay_out *q_inline[RELAY_CONN_QUEUE_INLINE];
    size_t qbytes;
    /* Close requested: sent once the queue before it is flushed. */
    int close_code;
    const char *close_reason; /* a string literal */
    bool close_sent;          /* our close frame is out; waiting for the client's */
    bool peer_closed;         /* the client's close frame came first: lws answers it */
    bool reconnect_sent;
    uint32_t replays;  /* memberships replaying history, paced by this queue (relay_resume.c) */
    uint32_t have_ids; /* msg_ids its joins' `have` named, still remembered: at most MR_HAVE_MAX */
    struct relay_held *held; /* publishes in order, the first waiting for a backend hook */
    uint32_t held_count;
    uint32_t joins_held; /* joins waiting for a backend hook (they count as rooms) */
} relay_conn;

/**
 * Initialise `c` (lws's per-session memory, or the test's) for socket `wsi`
 * (may be NULL): a new id, a random sid, the peer's address; list it in
 * r->conns and for relay_conn_find.
 */
void relay_conn_attach(relay *r, relay_conn *c, struct lws *wsi);
/** Unlist `c` and free its queue and identity. Its memberships must be gone already. */
void relay_conn_detach(relay_conn *c);
/** The open connection with this id, or NULL (it closed while a reply was on its way). */
relay_conn *relay_conn_find(relay *r, uint64_t id);
/** The connection's membership of `room`, or NULL. */
relay_member *relay_conn_member(relay_conn *c, const char *room, size_t len);

/**
 * Queue a shared frame (adds a reference). A frame that would take the
 * queue past limits.max_outbound_bytes closes the connection as a slow
 * consumer instead, unless the queue is empty: one frame always fits.
 */
void relay_conn_send(relay_conn *c, relay_out *o);
/** relay_conn_send for a frame of `room` (named in the log if it closes a slow consumer). */
void relay_conn_send_for(relay_conn *c, relay_out *o, const char *room);
/**
 * Close `c` as a slow consumer (4008): drop its queue, count it, and log it
 * once with the session, the user, `room` (may be NULL) and the `bytes` that
 * did not fit.
 */
void relay_conn_slow_consumer(relay_conn *c, const char *room, size_t bytes);
/** Queue a frame built in `b`. */
void relay_conn_send_buf(relay_conn *c, const mr_buf *b);
/** Ask for a close with `code` once what is queued before it is written (`reason`: a literal). */
void relay_conn_close(relay_conn *c, int code, const char *reason);
/** Queue an error frame, counting it; too many non-retryable ones close the connection. */
void relay_conn_error(relay_conn *c, json_t *id, mr_error_code code, const char *message);

/**
 * The client sent a close frame (LWS_CALLBACK_WS_PEER_INITIATED_CLOSE):
 * returns 1 when it answers ours (lws then closes without echoing), 0 for
 * lws to echo it and close.
 */
int relay_conn_peer_closed(relay_conn *c);
/** Write queued frames while the socket accepts them. Returns -1 to close the connection. */
int relay_conn_writable(relay_conn *c);
/**
 * Write what was queued during this pass of the event loop to every
 * connection whose queue was empty, without waiting for lws's writable
 * callback (docs/relay.md, "Writes"). Called once the pass is over, on the
 * lws thread; a connection whose socket does not take everything goes on
 * through the writable callback.
 */
void relay_conn_flush(relay *r);
/**
 * Take frames off the queue, up to RELAY_WRITE_BATCH_BYTES (at least one),
 * and write each with its WebSocket header into `wb` after LWS_PRE bytes of
 * headroom. Returns the bytes written after the headroom. (What
 * relay_conn_writable sends when more than one frame waits.)
 */
size_t relay_conn_take_batch(relay_conn *c, mr_buf *wb);
/** The i-th queued frame (0 = the next to be written); i < c->qlen. */
static inline relay_out *relay_conn_queued(const relay_conn *c, uint32_t i)
{
    return c->q[(c->qhead + i) % c->qcap];
}

/**
 * Fill `out` with 2*`bytes` random lowercase hex characters and a NUL
 * (bytes <= 32). Returns 0, or -1 when the random generator failed (`out`
 * is then all zeros: never use it as an identity).
 */
int relay_random_hex(char *out, size_t bytes);

#endif
