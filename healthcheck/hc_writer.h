/*
 * DNS writing and verification. While this agent holds the lease, the
 * desired plan is written whenever it differs from what this agent last
 * wrote (one write at a time, failed writes retried with exponential
 * backoff); after each write, c-ares asks every nameserver from inside each
 * changed geography until it serves the new answer, timing decision ->
 * served.
 */
#ifndef HC_WRITER_H
#define HC_WRITER_H

typedef struct hc_agent hc_agent;

/** Register the writer's metrics (once per process). */
void hc_writer_metrics_register(void);
/** Write the desired plan if this agent holds the lease and it changed (called every tick). */
void hc_writer_step(hc_agent *a);
/** Cancel every running verification (on stop). */
void hc_writer_cancel_verifications(hc_agent *a);

#endif
