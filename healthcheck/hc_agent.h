/*
 * The health agent: probes every relay endpoint of every region, runs the
 * per-endpoint state machines, shares observations with the other agents,
 * and — while it holds the lease — writes the DNS answers the quorum's
 * verdicts call for, then checks that the authoritative servers serve them.
 */
#ifndef HC_AGENT_H
#define HC_AGENT_H

#include "mr_buf.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct hc_agent hc_agent;

/**
 * Read the agent configuration file (and the regions file it names) and
 * build the agent on `base`. `listen_override` (may be NULL) replaces the
 * config's "listen". Returns NULL with a message naming the file and field.
 */
hc_agent *hc_agent_new(struct event_base *base, const char *config_path,
                       const char *listen_override, char *err, size_t errlen);
/** Bind the HTTP server, connect to NATS, start probing. Returns 0 or -1 with err. */
int hc_agent_start(hc_agent *a, char *err, size_t errlen);
/**
 * Stop probing and writing; let in-flight probes and HTTP calls end (within
 * their time-outs) and cancel verifications. Call after the loop returned
 * and before hc_agent_free.
 */
void hc_agent_stop(hc_agent *a);
/** The HTTP port actually bound. */
int hc_agent_port(hc_agent *a);
void hc_agent_free(hc_agent *a);

/** The /v1/status document. */
void hc_agent_status_json(hc_agent *a, mr_buf *out);
/** Set a region's drain flag for every agent; returns 0 or -1 with err (404-like when unknown). */
int hc_agent_drain(hc_agent *a, const char *region, bool drained, char *err, size_t errlen);
/** Prometheus lines for per-region and per-endpoint gauges. */
void hc_agent_metrics(hc_agent *a, mr_buf *out);
/** True when the agent is ready (NATS connected). */
bool hc_agent_ready(hc_agent *a, mr_buf *detail);
/** The API key drain requests must carry ("" disables the drain API). */
const char *hc_agent_api_key(hc_agent *a);

#endif
