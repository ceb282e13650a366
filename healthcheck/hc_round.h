/*
 * Probe rounds. Every probe.interval_ms each endpoint not already being
 * probed starts a round: tcp, then readyz, then ws, each with its own
 * time-out. The round's verdict (all passed) feeds the endpoint's state
 * machine (hc_fsm); latencies and errors are kept for the dashboard.
 */
#ifndef HC_ROUND_H
#define HC_ROUND_H

#include "hc_fsm.h"
#include "hc_probe.h"

#include <stddef.h>

typedef struct hc_agent hc_agent;

/** The probe kinds of a round, in order (names label metrics and status). */
extern const hc_probe_kind *const hc_round_kinds[];

/** Register the probe metrics (once per process). */
void hc_round_metrics_register(void);
/** Start a round on every idle endpoint (the probe timer's callback; arg is the agent). */
void hc_round_timer_cb(int fd, short what, void *arg);
/** This agent's own view of region r, from its endpoints' state machines. */
hc_state hc_round_region_state(hc_agent *a, size_t r);

#endif
