/*
 * An outbound frame, serialised once and shared by every session it is sent
 * to. It keeps LWS_PRE bytes of headroom in front of the payload, which lws
 * needs to write the WebSocket header in place.
 */
#ifndef RELAY_OUT_H
#define RELAY_OUT_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

typedef struct relay_out {
    uint32_t refs;
    uint32_t len;
    unsigned char buf[]; /* LWS_PRE headroom, then len bytes of payload */
} relay_out;

/** A frame holding a copy of `len` bytes, with one reference. */
relay_out *relay_out_new(const void *data, size_t len);
static inline unsigned char *relay_out_payload(relay_out *o)
{
    return o->buf + LWS_PRE;
}
static inline relay_out *relay_out_ref(relay_out *o)
{
    o->refs++;
    return o;
}
/** Drop one reference; the frame is freed with the last. Only the lws thread touches refs. */
void relay_out_unref(relay_out *o);

#endif
