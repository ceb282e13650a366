/*
 * Quorum over agents' observations.
 *
 * Each agent publishes its per-region view over NATS a few times a second
 * and whenever it changes; every agent feeds all views (its own included)
 * into this table. An agent counts as live while its last view is younger
 * than `live_ms`, so a dead or partitioned agent drops out of the count on
 * its own and the remaining ones still form a majority among themselves.
 *
 * The rule is a strict majority of the live agents, and without one the
 * verdict does not move. With three agents, one that sees a region down
 * while the two others see it up is outvoted; with two live agents that
 * disagree, the region keeps its previous verdict instead of flapping. An
 * agent whose vote for a region is UNKNOWN (it has not finished probing)
 * counts as live but votes for neither side.
 */
#include "hc_quorum.h"

#include <string.h>

void hc_quorum_init(hc_quorum *q, size_t n_items, int64_t live_ms)
{
    memset(q, 0, sizeof *q);
    q->n_items = n_items < HC_QUORUM_MAX_ITEMS ? n_items : HC_QUORUM_MAX_ITEMS;
    q->live_ms = live_ms;
}

int hc_quorum_observe(hc_quorum *q, const char *agent, const char *region, bool lease,
                      const hc_state *votes, int64_t now_ms, int64_t wall_ms)
{
    hc_quorum_agent *a = NULL;
    for (size_t i = 0; i < q->n_agents; i++)
        if (strcmp(q->agents[i].id, agent) == 0)
            a = &q->agents[i];
    if (!a) {
        /* Reuse the slot of an agent long gone before giving up. */
        for (size_t i = 0; i < q->n_agents && !a; i++)
            if (now_ms - q->agents[i].seen_ms > 10 * q->live_ms)
                a = &q->agents[i];
        if (!a) {
            if (q->n_agents == HC_QUORUM_MAX_AGENTS)
                return -1;
            a = &q->agents[q->n_agents++];
        }
        memset(a, 0, sizeof *a);
        strncpy(a->id, agent, sizeof a->id - 1);
    }
    strncpy(a->region, region ? region : "", sizeof a->region - 1);
    a->seen_ms = now_ms;
    a->wall_ms = wall_ms;
    a->lease = lease;
    memcpy(a->votes, votes, q->n_items * sizeof *votes);
    return 0;
}

static bool live(const hc_quorum *q, const hc_quorum_agent *a, int64_t now_ms)
{
    return now_ms - a->seen_ms <= q->live_ms;
}

size_t hc_quorum_live(const hc_quorum *q, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < q->n_agents; i++)
        n += live(q, &q->agents[i], now_ms);
    return n;
}

bool hc_quorum_decide(hc_quorum *q, int64_t now_ms, int64_t wall_ms, bool *changed)
{
    size_t n_live = hc_quorum_live(q, now_ms);
    bool any = false;
    for (size_t r = 0; r < q->n_items; r++) {
        size_t up = 0, down = 0;
        for (size_t i = 0; i < q->n_agents; i++) {
            const hc_quorum_agent *a = &q->agents[i];
            if (!live(q, a, now_ms))
                continue;
            up += a->votes[r] == HC_STATE_UP;
            down += a->votes[r] == HC_STATE_DOWN;
        }
        hc_state v = q->verdict[r];
        if (2 * up > n_live)
            v = HC_STATE_UP;
        else if (2 * down > n_live)
            v = HC_STATE_DOWN;
        bool ch = v != q->verdict[r];
        if (ch) {
            q->verdict[r] = v;
            q->verdict_since_ms[r] = wall_ms;
            any = true;
        }
        if (changed)
            changed[r] = ch;
    }
    return any;
}

bool hc_quorum_complete(const hc_quorum *q)
{
    for (size_t r = 0; r < q->n_items; r++)
        if (q->verdict[r] == HC_STATE_UNKNOWN)
            return false;
    return true;
}
