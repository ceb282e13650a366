/* Shared outbound frames: refcounted by the lws thread only, so no atomics are needed. */
#include "relay_out.h"
#include "mr_alloc.h"

#include <stdlib.h>
#include <string.h>

relay_out *relay_out_new(const void *data, size_t len)
{
    relay_out *o = mr_malloc(sizeof *o + LWS_PRE + len);
    o->refs = 1;
    o->len = (uint32_t)len;
    memcpy(o->buf + LWS_PRE, data, len);
    return o;
}

void relay_out_unref(relay_out *o)
{
    if (--o->refs == 0)
        free(o);
}
