/*
 * The tick: observations out and in, the quorum's verdicts, the DNS plan.
 *
 * Observations from NATS arrive on libnats' thread and go into the quorum
 * table under the agent's `mu`; everything else is touched by the loop only.
 */
#include "hc_tick.h"
#include "hc_agent_internal.h"
#include "hc_drain.h"
#include "hc_round.h"
#include "hc_wire.h"
#include "hc_writer.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static mr_metric m_live = MR_GAUGE("meridian_hc_live_agents", "Agents heard from recently");
static mr_metric m_nats = MR_GAUGE("meridian_hc_nats_connected", "1 while connected to NATS");
static mr_metric m_unheld =
    MR_GAUGE("meridian_hc_lease_unheld_seconds",
             "Seconds this agent has known of no lease holder (0 while one is known)");
static mr_metric m_term =
    MR_GAUGE("meridian_hc_lease_term", "The known lease holder's term (fencing token), 0 if none");

void hc_tick_metrics_register(void)
{
    mr_metric_register(&m_live);
    mr_metric_register(&m_nats);
    mr_metric_register(&m_unheld);
    mr_metric_register(&m_term);
}

void hc_tick_on_observation(hc_cluster *c, const char *data, size_t len, void *ud)
{
    hc_agent *a = ud;
    hc_obs *o = mr_malloc(sizeof *o);
    if (hc_wire_obs_parse(data, len, o) != 0) {
        mr_log_debug("malformed observation ignored (%zu bytes)", len);
        free(o);
        return;
    }
    /* Our own view is fed directly (it must count even without NATS); a view
     * of another topology (other regions file) is ignored, loudly. */
    if (strcmp(o->agent, a->agent_id) == 0) {
        free(o);
        return;
    }
    if (o->n_votes != a->n_items) {
        mr_log_warn("observation from %s has %zu items, expected %zu: regions files differ",
                    o->agent, o->n_votes, a->n_items);
        free(o);
        return;
    }
    hc_state v[HC_QUORUM_MAX_ITEMS];
    for (size_t i = 0; i < a->n_items; i++)
        v[i] = hc_state_from_char(o->votes[i]);
    if (o->n_drains)
        hc_cluster_merge_drains(c, o->drains, o->n_drains); /* a->cluster may not be set yet */
    int64_t now_us = mr_now_us();
    pthread_mutex_lock(&a->mu);
    hc_quorum_observe(&a->quorum, o->agent, o->region, o->lease, v, now_us / 1000, o->ts);
    /* Who holds the lease, as its holder says: the newest term wins. */
    if (o->lease && o->term &&
        (o->term >= a->holder_term || now_us - a->holder_seen_us > a->live_ms * 1000LL)) {
        snprintf(a->holder_id, sizeof a->holder_id, "%s", o->agent);
        a->holder_term = o->term;
        a->holder_since_wall_ms = o->lease_since;
        a->holder_seen_us = now_us;
    }
    /* The writer's last write, so every dashboard's timeline has it. */
    if (o->has_write && o->write_ts > a->remote_write_ts) {
        a->remote_write_ts = o->write_ts;
        a->remote_write_pending = true;
        snprintf(a->remote_write_agent, sizeof a->remote_write_agent, "%s", o->agent);
        snprintf(a->remote_write_text, sizeof a->remote_write_text, "%s", o->write_text);
    }
    pthread_mutex_unlock(&a->mu);
    free(o);
}

static void publish_view(hc_agent *a, const hc_cluster_lease_info *li)
{
    hc_state v[HC_QUORUM_MAX_ITEMS];
    size_t nr = a->regions->n_regions;
    for (size_t r = 0; r < nr; r++)
        v[r] = hc_round_region_state(a, r);
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        v[nr + i] = a->eps[i].fsm.state;
    hc_obs *o = mr_calloc(1, sizeof *o);
    for (size_t i = 0; i < a->n_items; i++)
        o->votes[i] = hc_state_char(v[i]);
    o->n_votes = a->n_items;
    int64_t now = mr_now_us();
    pthread_mutex_lock(&a->mu);
    hc_quorum_observe(&a->quorum, a->agent_id, a->region_name, li->held, v, now / 1000,
                      mr_wall_ms());
    pthread_mutex_unlock(&a->mu);
    if (!a->force_publish && strcmp(o->votes, a->last_votes) == 0 &&
        now - a->last_publish_us < a->publish_ms * 1000LL) {
        free(o);
        return;
    }
    a->force_publish = false;
    memcpy(a->last_votes, o->votes, a->n_items + 1);
    a->last_publish_us = now;
    snprintf(o->agent, sizeof o->agent, "%s", a->agent_id);
    snprintf(o->region, sizeof o->region, "%s", a->region_name);
    o->ts = mr_wall_ms();
    o->lease = li->held;
    o->term = li->term;
    o->lease_since = li->since_wall_ms;
    if (li->held && a->last_write_ok_wall_ms) {
        o->has_write = true;
        o->write_ts = a->last_write_ok_wall_ms;
        snprintf(o->write_text, sizeof o->write_text, "%s", a->last_write_text);
    }
    o->n_drains = nr;
    hc_cluster_drain_flags(a->cluster, o->drains);
    mr_buf b = MR_BUF_INIT;
    hc_wire_obs_encode(o, &b);
    hc_cluster_publish(a->cluster, b.data, b.len);
    mr_buf_free(&b);
    free(o);
}

void hc_tick_cb(int fd, short what, void *arg)
{
    hc_agent *a = arg;
    hc_cluster_lease_info li;
    hc_cluster_lease(a->cluster, &li);
    mr_metric_set(&m_nats, hc_cluster_connected(a->cluster));
    publish_view(a, &li);

    bool changed[HC_QUORUM_MAX_ITEMS];
    int64_t now_ms = mr_now_us() / 1000;
    pthread_mutex_lock(&a->mu);
    hc_quorum_decide(&a->quorum, now_ms, mr_wall_ms(), changed);
    memcpy(a->verdict, a->quorum.verdict, a->n_items * sizeof *a->verdict);
    memcpy(a->verdict_since, a->quorum.verdict_since_ms, a->n_items * sizeof(int64_t));
    size_t live = hc_quorum_live(&a->quorum, now_ms);
    /* The lease: this agent, or the holder a live agent says it is. An
     * alert fires on meridian_hc_lease_unheld_seconds when no agent knows
     * of a holder for more than a few seconds. */
    int64_t now_us = mr_now_us();
    if (li.held) {
        snprintf(a->holder_id, sizeof a->holder_id, "%s", a->agent_id);
        a->holder_term = li.term;
        a->holder_since_wall_ms = li.since_wall_ms;
        a->holder_seen_us = now_us;
    } else if (strcmp(a->holder_id, a->agent_id) == 0 ||
               now_us - a->holder_seen_us > a->live_ms * 1000LL) {
        a->holder_id[0] = '\0';
    }
    int64_t known = a->holder_seen_us > a->started_us ? a->holder_seen_us : a->started_us;
    mr_metric_set(&m_unheld, a->holder_id[0] ? 0 : (now_us - known) / 1000000);
    mr_metric_set(&m_term, (int64_t)(a->holder_id[0] ? a->holder_term : 0));
    if (a->remote_write_pending) {
        a->remote_write_pending = false;
        hc_events_add(&a->events, "write", "%s wrote DNS: %s", a->remote_write_agent,
                      a->remote_write_text);
    }
    pthread_mutex_unlock(&a->mu);
    mr_metric_set(&m_live, (int64_t)live);

    size_t nr = a->regions->n_regions;
    for (size_t r = 0; r < nr; r++) {
        if (changed[r]) {
            const char *plural = live == 1 ? "" : "s";
            mr_log_info("verdict: region %s is %s (%zu live agent%s)", a->regions->regions[r].name,
                        hc_state_name(a->verdict[r]), live, plural);
            hc_events_add(&a->events, "verdict", "region %s is %s (majority of %zu live agent%s)",
                          a->regions->regions[r].name, hc_state_name(a->verdict[r]), live, plural);
        }
    }
    hc_cluster_drains(a->cluster, a->drained);

    /* No plan until every region has a verdict: writing half-informed
     * answers at start-up could pull a healthy region out of DNS. */
    bool complete = true;
    for (size_t r = 0; r < nr; r++)
        complete &= a->verdict[r] != HC_STATE_UNKNOWN;
    if (complete) {
        bool healthy[HC_QUORUM_MAX_ITEMS], relay_up[HC_QUORUM_MAX_ITEMS];
        for (size_t r = 0; r < nr; r++)
            healthy[r] = a->verdict[r] == HC_STATE_UP && !a->drained[r];
        for (size_t i = 0; i < a->regions->n_relays_total; i++)
            relay_up[i] = a->verdict[nr + i] != HC_STATE_DOWN;
        hc_dns_plan p;
        hc_dns_plan_build(&p, a->regions, healthy, relay_up);
        if (!a->have_desired || !hc_dns_plan_equal(&p, &a->desired)) {
            if (a->have_desired)
                hc_dns_plan_free(&a->desired);
            a->desired = p;
            a->have_desired = true;
            a->decision_us = mr_now_us();
            a->decision_wall_ms = mr_wall_ms();
            mr_log_info("DNS decision: %s", p.text);
            hc_events_add(&a->events, "decision", "DNS should answer %s", p.text);
        } else {
            hc_dns_plan_free(&p);
        }
    }
    hc_writer_step(a);
    hc_drain_step(a);
}