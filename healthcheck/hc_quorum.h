/*
 * Quorum over agents' observations: every agent reports, per item (a region
 * or a relay endpoint), whether it sees it up or down; the verdict for an
 * item is what a majority of the live agents report.
 */
#ifndef HC_QUORUM_H
#define HC_QUORUM_H

#include "hc_fsm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_QUORUM_MAX_AGENTS 32
#define HC_QUORUM_MAX_ITEMS  256
#define HC_AGENT_ID_MAX      64

typedef struct hc_quorum_agent {
    char id[HC_AGENT_ID_MAX];
    char region[HC_AGENT_ID_MAX]; /* the region the agent runs in (informational) */
    int64_t seen_ms;              /* monotonic time of its last observation */
    int64_t wall_ms;              /* the agent's own clock when it sent it */
    bool lease;                   /* the agent says it holds the DNS lease */
    hc_state votes[HC_QUORUM_MAX_ITEMS];
} hc_quorum_agent;

typedef struct hc_quorum {
    size_t n_items;
    int64_t live_ms; /* an agent is live while its last observation is younger than this */
    hc_quorum_agent agents[HC_QUORUM_MAX_AGENTS];
    size_t n_agents;
    hc_state verdict[HC_QUORUM_MAX_ITEMS];
    int64_t verdict_since_ms[HC_QUORUM_MAX_ITEMS]; /* wall time of the last change */
} hc_quorum;

void hc_quorum_init(hc_quorum *q, size_t n_items, int64_t live_ms);
/**
 * Record an agent's observation (votes has n_items entries) at monotonic
 * time now_ms. Returns 0, or -1 when the table of agents is full.
 */
int hc_quorum_observe(hc_quorum *q, const char *agent, const char *region, bool lease,
                      const hc_state *votes, int64_t now_ms, int64_t wall_ms);
/** Number of live agents at now_ms. */
size_t hc_quorum_live(const hc_quorum *q, int64_t now_ms);
/**
 * Recompute verdicts. A region becomes UP (DOWN) when more than half of the
 * live agents vote UP (DOWN); otherwise its verdict stays as it was. Returns
 * true when any verdict changed; `changed` (n_items entries, may be NULL)
 * marks which.
 */
bool hc_quorum_decide(hc_quorum *q, int64_t now_ms, int64_t wall_ms, bool *changed);
/** True once every region has a verdict other than UNKNOWN. */
bool hc_quorum_complete(const hc_quorum *q);

#endif
