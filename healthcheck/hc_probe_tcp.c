/*
 * TCP probe: the endpoint accepts a connection (and completes a TLS
 * handshake, for wss:// endpoints, whose certificate expiry is measured).
 */
#include "hc_probe.h"

#include <stddef.h>

static void connected(hc_probe_io *io)
{
    hc_probe_io_finish(io, true, NULL);
}

static int tcp_start(struct event_base *base, const hc_probe_target *t, int timeout_ms,
                     hc_probe_cb cb, void *ud, hc_probe_result *res)
{
    hc_probe_io *io;
    return hc_probe_io_open(&io, base, t, timeout_ms, cb, ud, connected, NULL, res);
}

const hc_probe_kind hc_probe_tcp = {"tcp", tcp_start};
