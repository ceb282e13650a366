/*
 * Sender threads: the send() calls of one pass's writes split over several
 * threads, so that a message to a big room uses every core of the host
 * (docs/relay.md, "Writes"). The lws thread prepares the jobs (a socket and
 * the bytes of one frame, header and payload) and runs them; it is the
 * first sender itself and returns once every job is done, so the sockets
 * and frames are never touched by two threads at once and nothing of lws
 * is used off its thread. What a socket did not take is left for the
 * caller to hand to lws.
 */
#ifndef RELAY_SEND_H
#define RELAY_SEND_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Fewer jobs than this are written by the calling thread alone: waking a sender costs more. */
#define RELAY_SEND_MIN_SPLIT 64

typedef struct relay_send_job {
    int fd;
    unsigned char hdr[16]; /* the WebSocket header, sent first */
    size_t hdr_len;
    const void *payload; /* then this (a shared frame: read only) */
    size_t payload_len;
    ssize_t sent; /* after the run: bytes the socket took (0 when it took none) */
    int err;      /* after the run: errno of a failed send other than EAGAIN, else 0 */
    void *ud;     /* the caller's (its connection) */
    /* No pointer into the job itself: the caller's array may move while it is filled. */
} relay_send_job;

typedef struct relay_senders relay_senders;

/** `threads` senders in all, the caller included (1: no thread is started). NULL on failure. */
relay_senders *relay_senders_new(int threads);
/** Senders in all, the caller included. */
int relay_senders_count(const relay_senders *s);
/** Write every job once (non-blocking), split over the senders; returns when all are done. */
void relay_senders_run(relay_senders *s, relay_send_job *jobs, size_t n);
/** Stop and join the threads. NULL is fine. */
void relay_senders_free(relay_senders *s);

#endif
