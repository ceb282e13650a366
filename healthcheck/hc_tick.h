/*
 * The tick, every 100 ms on the agent's loop: publish this agent's view (per
 * region and per endpoint: up, down, unknown) when it changed or every
 * publish_ms; recompute the quorum's verdicts from every live agent's view;
 * build the DNS plan from them; then let the writer (hc_writer) and the
 * drain notifier (hc_drain) act on it.
 */
#ifndef HC_TICK_H
#define HC_TICK_H

#include "hc_cluster.h"

#include <stddef.h>

typedef struct hc_agent hc_agent;

/** Register the tick's metrics (once per process). */
void hc_tick_metrics_register(void);
/** The tick timer's callback (arg is the agent). */
void hc_tick_cb(int fd, short what, void *arg);
/**
 * An observation from NATS (any agent's, this one's included), on libnats'
 * thread: parsed and copied into the quorum table under the agent's lock.
 */
void hc_tick_on_observation(hc_cluster *c, const char *data, size_t len, void *ud);

#endif
