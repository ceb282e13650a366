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
#include "hc_writer.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static mr_metric m_live = MR_GAUGE("meridian_hc_live_agents", "Agents heard from recently");
static mr_metric m_nats = MR_GAUGE("meridian_hc_nats_connected", "1 while connected to NATS");

void hc_tick_metrics_register(void)
{
    mr_metric_register(&m_live);
    mr_metric_register(&m_nats);
}

void hc_tick_on_observation(const char *data, size_t len, void *ud)
{
    hc_agent *a = ud;
    json_error_t jerr;
    json_t *o = json_loadb(data, len, 0, &jerr);
    if (!o)
        return;
    const char *id = json_string_value(json_object_get(o, "agent"));
    const char *region = json_string_value(json_object_get(o, "region"));
    const char *votes = json_string_value(json_object_get(o, "votes"));
    bool lease = json_is_true(json_object_get(o, "lease"));
    json_int_t ts = json_integer_value(json_object_get(o, "ts"));
    json_t *w = json_object_get(o, "write");
    /* Our own view is fed directly (it must count even without NATS); a view
     * of another topology (other regions file) is ignored, loudly. */
    if (id && votes && strcmp(id, a->agent_id) != 0) {
        if (strlen(votes) != a->n_items) {
            mr_log_warn("observation from %s has %zu items, expected %zu: regions files differ", id,
                        strlen(votes), a->n_items);
        } else {
            hc_state v[HC_QUORUM_MAX_ITEMS];
            for (size_t i = 0; i < a->n_items; i++)
                v[i] = hc_state_from_char(votes[i]);
            pthread_mutex_lock(&a->mu);
            hc_quorum_observe(&a->quorum, id, region, lease, v, mr_now_us() / 1000, ts);
            /* The writer's last write, so every dashboard's timeline has it. */
            json_int_t wts = json_integer_value(json_object_get(w, "ts"));
            const char *wtext = json_string_value(json_object_get(w, "text"));
            if (w && wtext && wts > a->remote_write_ts) {
                a->remote_write_ts = wts;
                a->remote_write_pending = true;
                snprintf(a->remote_write_agent, sizeof a->remote_write_agent, "%s", id);
                snprintf(a->remote_write_text, sizeof a->remote_write_text, "%s", wtext);
            }
            pthread_mutex_unlock(&a->mu);
        }
    }
    json_decref(o);
}

static void publish_view(hc_agent *a, bool lease)
{
    char votes[HC_QUORUM_MAX_ITEMS + 1];
    hc_state v[HC_QUORUM_MAX_ITEMS];
    size_t nr = a->regions->n_regions;
    for (size_t r = 0; r < nr; r++)
        v[r] = hc_round_region_state(a, r);
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        v[nr + i] = a->eps[i].fsm.state;
    for (size_t i = 0; i < a->n_items; i++)
        votes[i] = hc_state_char(v[i]);
    votes[a->n_items] = '\0';
    int64_t now = mr_now_us();
    pthread_mutex_lock(&a->mu);
    hc_quorum_observe(&a->quorum, a->agent_id, a->region_name, lease, v, now / 1000, mr_wall_ms());
    pthread_mutex_unlock(&a->mu);
    if (strcmp(votes, a->last_votes) == 0 && now - a->last_publish_us < a->publish_ms * 1000LL)
        return;
    memcpy(a->last_votes, votes, a->n_items + 1);
    a->last_publish_us = now;
    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"agent\":");
    mr_buf_json_str(&b, a->agent_id, strlen(a->agent_id));
    mr_buf_puts(&b, ",\"region\":");
    mr_buf_json_str(&b, a->region_name, strlen(a->region_name));
    mr_buf_printf(&b, ",\"lease\":%s,\"ts\":%lld,\"votes\":\"%s\"", lease ? "true" : "false",
                  (long long)mr_wall_ms(), votes);
    if (lease && a->last_write_ok_wall_ms) {
        mr_buf_printf(&b, ",\"write\":{\"ts\":%lld,\"text\":", (long long)a->last_write_ok_wall_ms);
        mr_buf_json_str(&b, a->last_write_text, strlen(a->last_write_text));
        mr_buf_putc(&b, '}');
    }
    mr_buf_putc(&b, '}');
    hc_cluster_publish(a->cluster, b.data, b.len);
    mr_buf_free(&b);
}
void hc_tick_cb(int fd, short what, void *arg)
{
    hc_agent *a = arg;
    bool held = hc_cluster_lease_held(a->cluster);
    mr_metric_set(&m_nats, hc_cluster_connected(a->cluster));
    publish_view(a, held);

    bool changed[HC_QUORUM_MAX_ITEMS];
    int64_t now_ms = mr_now_us() / 1000;
    pthread_mutex_lock(&a->mu);
    hc_quorum_decide(&a->quorum, now_ms, mr_wall_ms(), changed);
    memcpy(a->verdict, a->quorum.verdict, a->n_items * sizeof *a->verdict);
    memcpy(a->verdict_since, a->quorum.verdict_since_ms, a->n_items * sizeof(int64_t));
    size_t live = hc_quorum_live(&a->quorum, now_ms);
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
            mr_log_info("verdict: region %s is %s (%zu live agents)", a->regions->regions[r].name,
                        hc_state_name(a->verdict[r]), live);
            hc_events_add(&a->events, "verdict", "region %s is %s (majority of %zu agents)",
                          a->regions->regions[r].name, hc_state_name(a->verdict[r]), live);
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