/*
 * Client connections: identity, lookup by id, and the outbound queue.
 *
 * Writes go through a per-connection ring of shared frames (relay_out). A
 * frame for a room is serialised once and referenced from every member's
 * ring, so fan-out costs one pointer and one reference per member. The ring
 * is bounded in bytes: a member that cannot keep up is closed as a slow
 * consumer (4008) instead of growing memory without bound.
 *
 * Closes are requested, not done in place: the close code is recorded and
 * the connection asks to become writable, so frames queued before the close
 * (an `error` explaining it, for instance) still reach the client.
 *
 * Frames queued on an empty queue are written when the current pass of the
 * event loop ends (relay_conn_flush), not from lws's writable callback: that
 * callback costs a poll() over every socket and a dispatch per connection,
 * one more pass per message, which at 5,000 members is most of a message's
 * latency that is not send() itself (docs/benchmarks.md, "Fan-out tail").
 * lws 4.1 asks for writes to come from the writable callback because of
 * partial writes and HTTP/2 streams; a WebSocket connection without
 * extensions on the service thread has neither problem: lws_write() of a
 * raw frame appends to lws's own buffer when part of an earlier one is
 * still there and asks for the writable callback to send it. Only
 * connections that are backed up (a partial write held by lws, frames left
 * after a write) wait for the callback.
 */
#include "relay_conn.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_proto.h"
#include "relay_frames.h"
#include "relay_metrics.h"
#include "relay_send.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int relay_random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[32];
    if (bytes > sizeof raw)
        bytes = sizeof raw;
    int rc = 0;
    if (RAND_bytes(raw, (int)bytes) != 1) {
        memset(raw, 0, bytes);
        rc = -1;
    }
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
    return rc;
}

void relay_conn_attach(relay *r, relay_conn *c, struct lws *wsi)
{
    memset(c, 0, sizeof *c);
    c->r = r;
    c->wsi = wsi;
    c->q = c->q_inline;
    c->qcap = RELAY_CONN_QUEUE_INLINE;
    c->id = ++r->next_conn_id;
    /* Without randomness the session id is still unique within the process. */
    if (relay_random_hex(c->sid, RELAY_SID_LEN / 2) != 0)
        snprintf(c->sid, sizeof c->sid, "%016llx", (unsigned long long)c->id);
    if (!wsi || !lws_get_peer_simple(wsi, c->ip, sizeof c->ip))
        snprintf(c->ip, sizeof c->ip, "unknown");
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->conn_count++;
    size_t il = strlen(c->ip);
    intptr_t n = (intptr_t)mr_map_get(&r->ip_counts, c->ip, il);
    mr_map_put(&r->ip_counts, c->ip, il, (void *)(n + 1));
    mr_map_put(&r->conns_by_id, (const char *)&c->id, sizeof c->id, c);
    mr_metric_inc(&relay_m.connections);
    mr_metric_inc(&relay_m.connections_total);
}

/* An empty queue gives its heap ring back and uses the inline one again. */
static void queue_emptied(relay_conn *c)
{
    c->qhead = 0;
    if (c->q != c->q_inline) {
        free(c->q);
        c->q = c->q_inline;
        c->qcap = RELAY_CONN_QUEUE_INLINE;
    }
}

static void flush_unlist(relay_conn *c)
{
    if (!c->flush_listed)
        return;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else
        c->r->flush = c->flush_next;
    if (c->flush_next)
        c->flush_next->flush_prev = c->flush_prev;
    c->flush_prev = c->flush_next = NULL;
    c->flush_listed = false;
}

/* Frames were queued on an empty queue: write them when the pass ends. */
static void flush_list(relay_conn *c)
{
    if (c->flush_listed)
        return;
    relay *r = c->r;
    c->flush_prev = NULL;
    c->flush_next = r->flush;
    if (r->flush)
        r->flush->flush_prev = c;
    r->flush = c;
    c->flush_listed = true;
}

static void drop_queue(relay_conn *c)
{
    while (c->qlen) {
        relay_out_unref(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    c->qbytes = 0;
    queue_emptied(c);
}

void relay_conn_detach(relay_conn *c)
{
    relay *r = c->r;
    flush_unlist(c);
    drop_queue(c);
    mr_buf_free(&c->rx);
    free(c->user);
    c->user = NULL;
    json_decref(c->rooms_claim);
    c->rooms_claim = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->conn_count--;
    mr_map_del(&r->conns_by_id, (const char *)&c->id, sizeof c->id);
    size_t il = strlen(c->ip);
    intptr_t n = (intptr_t)mr_map_get(&r->ip_counts, c->ip, il);
    if (n <= 1)
        mr_map_del(&r->ip_counts, c->ip, il);
    else
        mr_map_put(&r->ip_counts, c->ip, il, (void *)(n - 1));
    mr_metric_add(&relay_m.connections, -1);
    c->r = NULL;
}

relay_conn *relay_conn_find(relay *r, uint64_t id)
{
    return mr_map_get(&r->conns_by_id, (const char *)&id, sizeof id);
}

relay_member *relay_conn_member(relay_conn *c, const char *room, size_t len)
{
    for (relay_member *m = c->memberships; m; m = m->conn_next)
        if (m->room->name_len == len && memcmp(m->room->name, room, len) == 0)
            return m;
    return NULL;
}

void relay_conn_slow_consumer(relay_conn *c, const char *room, size_t bytes)
{
    if (c->close_code)
        return;
    mr_log_warn("session %s (user %s, %s): slow consumer: %zu bytes would be queued for room %s "
                "(limits.max_outbound_bytes %lld); closing with %d",
                c->sid, c->user ? c->user : "-", c->ip, bytes, room ? room : "-",
                (long long)c->r->cfg->limits.max_outbound_bytes, MR_CLOSE_SLOW_CONSUMER);
    mr_metric_inc(&relay_m.slow_consumer_closes);
    /* Drop what is queued: the client is told why by the close code alone. */
    drop_queue(c);
    relay_conn_close(c, MR_CLOSE_SLOW_CONSUMER, "slow consumer");
}

void relay_conn_send_for(relay_conn *c, relay_out *o, const char *room)
{
    if (c->close_code)
        return; /* nothing more goes out once a close is requested */
    if (c->qlen && c->qbytes + o->len > (size_t)c->r->cfg->limits.max_outbound_bytes) {
        relay_conn_slow_consumer(c, room, c->qbytes + o->len);
        return;
    }
    if (!c->q)
        queue_emptied(c); /* a connection set up without relay_conn_attach */
    if (c->qlen == c->qcap) {
        uint32_t ncap = c->qcap * 2;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, so sizeof a pointer */
        relay_out **nq = mr_malloc(ncap * sizeof *nq);
        for (uint32_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        if (c->q != c->q_inline)
            free(c->q);
        c->q = nq;
        c->qhead = 0;
        c->qcap = ncap;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = relay_out_ref(o);
    c->qlen++;
    c->qbytes += o->len;
    if (c->qlen == 1 && c->wsi)
        flush_list(c);
}

void relay_conn_send(relay_conn *c, relay_out *o)
{
    relay_conn_send_for(c, o, NULL);
}

void relay_conn_send_buf(relay_conn *c, const mr_buf *b)
{
    relay_out *o = relay_out_new(b->data, b->len);
    relay_conn_send(c, o);
    relay_out_unref(o);
}

void relay_conn_close(relay_conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code;
    c->close_reason = reason;
    if (!c->wsi)
        return;
    /*
     * The close frame goes out after what is queued and after any part of a frame the
     * kernel has not taken yet; a client that stops reading gets this long, then it is
     * disconnected without one.
     */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, RELAY_CLOSE_FLUSH_S);
    lws_callback_on_writable(c->wsi);
}

void relay_conn_error(relay_conn *c, json_t *id, mr_error_code code, const char *message)
{
    mr_buf b = MR_BUF_INIT;
    relay_frame_error(&b, id, code, message);
    relay_conn_send_buf(c, &b);
    mr_buf_free(&b);
    mr_metric_inc(&relay_m.errors[code]);
    if (!mr_proto_error_retryable(code) && code != MR_ERR_AUTH_FAILED &&
        ++c->bad_frames > (uint32_t)c->r->cfg->limits.max_bad_frames)
        relay_conn_close(c, MR_CLOSE_PROTOCOL, "too many invalid frames");
}

/* Take the head frame off the queue, counting it as written. */
static relay_out *dequeue(relay_conn *c)
{
    relay_out *o = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    c->qbytes -= o->len;
    if (c->qlen == 0)
        queue_emptied(c);
    mr_metric_inc(&relay_m.frames_out);
    mr_metric_add(&relay_m.bytes_out, o->len);
    return o;
}

/* The header of an unmasked text frame of `len` bytes at `p`; returns its length. */
static size_t ws_header(unsigned char *p, size_t len)
{
    unsigned char *s = p;
    *p++ = 0x81; /* FIN, text */
    if (len < 126) {
        *p++ = (unsigned char)len;
    } else if (len < 65536) {
        *p++ = 126;
        *p++ = (unsigned char)(len >> 8);
        *p++ = (unsigned char)len;
    } else {
        *p++ = 127;
        for (int b = 7; b >= 0; b--)
            *p++ = (unsigned char)((uint64_t)len >> (8 * b));
    }
    return (size_t)(p - s);
}

/*
 * Write several queued frames with one send. On loopback and on busy relays
 * the cost of a delivery is mostly the syscall, so a member with a backlog
 * gets up to RELAY_WRITE_BATCH_BYTES of frames per send. Server frames are
 * not masked, so the WebSocket headers are simply written in front of each
 * payload here and the batch goes out raw.
 */
size_t relay_conn_take_batch(relay_conn *c, mr_buf *wb)
{
    uint32_t k = 0;
    size_t total = 0;
    while (k < c->qlen && total < RELAY_WRITE_BATCH_BYTES) {
        total += relay_conn_queued(c, k)->len + RELAY_WS_HEADER_MAX;
        k++;
    }
    mr_buf_reset(wb);
    mr_buf_reserve(wb, LWS_PRE + total);
    unsigned char *start = (unsigned char *)wb->data + LWS_PRE, *p = start;
    for (uint32_t i = 0; i < k; i++) {
        relay_out *o = dequeue(c);
        p += ws_header(p, o->len);
        memcpy(p, relay_out_payload(o), o->len);
        p += o->len;
        relay_out_unref(o);
    }
    return (size_t)(p - start);
}

/*
 * Send the close frame ourselves and keep the connection until the client
 * answers with its close frame (relay_conn_peer_closed) or RELAY_CLOSE_ACK_S
 * passes. lws 4.1, left to close on its own, shuts the socket right after
 * the frame: a client still writing then gets a TCP reset, and its stack
 * may drop the unread close frame with it (Node's ws reported 1006 instead
 * of 4009 or 4029). Meanwhile relay_client_receive discards what arrives.
 */
static int send_close(relay_conn *c)
{
    /* Written raw, like the batches: lws keeps the connection open as it knows it. */
    unsigned char buf[LWS_PRE + 2 + 125];
    unsigned char *p = buf + LWS_PRE;
    size_t rl = strlen(c->close_reason);
    if (rl > 123)
        rl = 123; /* a control frame's payload is at most 125 bytes */
    p[0] = 0x88;  /* FIN, close */
    p[1] = (unsigned char)(2 + rl);
    p[2] = (unsigned char)(c->close_code >> 8);
    p[3] = (unsigned char)c->close_code;
    memcpy(p + 4, c->close_reason, rl);
    if (lws_write(c->wsi, p, 4 + rl, LWS_WRITE_RAW) < 0)
        return -1;
    c->close_sent = true;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, RELAY_CLOSE_ACK_S);
    return 0;
}

int relay_conn_peer_closed(relay_conn *c)
{
    if (!c)
        return 0;
    /* lws answers and closes: nothing more is written to it from the end of a pass. */
    c->peer_closed = true;
    /* Our close frame is out: the client's is the answer, not one to echo. */
    return c->close_sent ? 1 : 0;
}

/*
 * Write queued frames while the kernel takes them; lws keeps a partial write
 * itself and we stop there. `first_checked`: whether the socket is known to
 * be writable (the writable callback: poll() found it so), else it is
 * asked first. lws_send_pipe_choked() is a poll() of its own, so it is not
 * asked before the first write of a writable callback: one syscall less
 * per delivery when a member has one frame queued (the common case).
 * Returns -1 when the connection failed.
 */
static int write_queued(relay_conn *c, bool first_checked)
{
    for (bool first = true; c->qlen && !lws_partial_buffered(c->wsi) &&
                            ((first && first_checked) || !lws_send_pipe_choked(c->wsi));
         first = false) {
        int n;
        if (c->qlen > 1) {
            mr_buf *wb = &c->r->write_batch;
            size_t len = relay_conn_take_batch(c, wb);
            n = lws_write(c->wsi, (unsigned char *)wb->data + LWS_PRE, len, LWS_WRITE_RAW);
        } else {
            relay_out *o = dequeue(c);
            n = lws_write(c->wsi, relay_out_payload(o), o->len, LWS_WRITE_TEXT);
            relay_out_unref(o);
        }
        if (n < 0)
            return -1;
    }
    return 0;
}

int relay_conn_writable(relay_conn *c)
{
    flush_unlist(c); /* written here: nothing left for the end of the pass */
    if (write_queued(c, true) < 0)
        return -1;
    /* The close frame must not overtake the rest of a frame the kernel did not take. */
    if (c->qlen || (c->close_code && lws_partial_buffered(c->wsi))) {
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->close_code && !c->close_sent)
        return send_close(c);
    return 0;
}

/* A write outside the connection's own callback failed: lws closes it on its next pass. */
static void write_failed(relay_conn *c)
{
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* After a write at the end of a pass: what is left goes through the writable callback. */
static void after_flush(relay_conn *c)
{
    /* Frames left, or a history replay paced by this queue (relay_client_writable). */
    if (c->qlen || c->replays)
        lws_callback_on_writable(c->wsi);
}

/* A job for the sender threads: the connection's one queued frame, header and payload. */
static void add_job(relay *r, relay_conn *c, size_t *n)
{
    if (*n == r->send_jobs_cap) {
        r->send_jobs_cap = r->send_jobs_cap ? 2 * r->send_jobs_cap : 1024;
        r->send_jobs = mr_realloc(r->send_jobs, r->send_jobs_cap * sizeof *r->send_jobs);
    }
    relay_send_job *j = &r->send_jobs[(*n)++];
    relay_out *o = relay_conn_queued(c, 0);
    j->fd = lws_get_socket_fd(c->wsi);
    j->hdr_len = ws_header(j->hdr, o->len);
    j->payload = relay_out_payload(o);
    j->payload_len = o->len;
    j->sent = 0;
    j->err = 0;
    j->ud = c;
}

/*
 * A job is done: the frame leaves the queue. What the socket did not take
 * is handed to lws, which tries the socket again and keeps the rest for
 * its writable callback, as for any partial write.
 */
static void finish_job(relay *r, relay_send_job *j)
{
    relay_conn *c = j->ud;
    relay_out *o = dequeue(c);
    if (j->err) {
        relay_out_unref(o);
        write_failed(c);
        return;
    }
    if ((size_t)j->sent < j->hdr_len + j->payload_len) {
        mr_buf *wb = &r->write_batch;
        size_t rest = j->hdr_len + j->payload_len - (size_t)j->sent, hl = j->hdr_len;
        mr_buf_reset(wb);
        mr_buf_reserve(wb, LWS_PRE + rest);
        unsigned char *p = (unsigned char *)wb->data + LWS_PRE;
        size_t skip = (size_t)j->sent;
        if (skip < hl) {
            memcpy(p, j->hdr + skip, hl - skip);
            p += hl - skip;
            skip = 0;
        } else {
            skip -= hl;
        }
        memcpy(p, relay_out_payload(o) + skip, o->len - skip);
        if (lws_write(c->wsi, (unsigned char *)wb->data + LWS_PRE, rest, LWS_WRITE_RAW) < 0) {
            relay_out_unref(o);
            write_failed(c);
            return;
        }
    }
    relay_out_unref(o);
    after_flush(c);
}

void relay_conn_flush(relay *r)
{
    /* With sender threads, one-frame writes to plain sockets are shared out (relay_send.h). */
    bool share = relay_senders_count(r->senders) > 1;
    size_t njobs = 0;
    while (r->flush) {
        relay_conn *c = r->flush;
        flush_unlist(c);
        if (!c->qlen || c->peer_closed)
            continue;
        /*
         * A close waits for the writable callback (relay_conn_close asked for it), and so
         * does a connection whose socket holds part of a frame: lws sends that first.
         */
        if (c->close_code || lws_partial_buffered(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            continue;
        }
        if (share && c->qlen == 1 && !lws_is_ssl(c->wsi)) {
            add_job(r, c, &njobs);
            continue;
        }
        /*
         * Not asked whether the socket is choked: a full socket takes nothing, lws keeps the
         * frame and asks for the writable callback, which a poll() per connection would cost
         * as much as the send it might save.
         */
        if (write_queued(c, true) < 0) {
            write_failed(c);
            continue;
        }
        after_flush(c);
    }
    if (!njobs)
        return;
    relay_senders_run(r->senders, r->send_jobs, njobs);
    for (size_t i = 0; i < njobs; i++)
        finish_job(r, &r->send_jobs[i]);
}
