/*
 * Probe rounds against every relay hc_endpoint, and the per-hc_endpoint state the
 * rounds feed: the state machine, last latency per kind, last error, TLS
 * certificate lifetime and two minutes of history.
 */
#include "hc_round.h"
#include "hc_agent_internal.h"
#include "mr_jwt.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const hc_probe_kind *const hc_round_kinds[HC_N_KINDS] = {&hc_probe_tcp, &hc_probe_readyz,
                                                         &hc_probe_ws};

static mr_metric m_probes = MR_COUNTER("meridian_hc_probes_total", "Probe rounds run");
static mr_metric m_probe_fail =
    MR_COUNTER("meridian_hc_probe_failures_total", "Probe rounds that failed");
static mr_metric m_probe_lat =
    MR_HISTOGRAM("meridian_hc_probe_round_seconds", "Duration of successful probe rounds", NULL, 0);
static mr_metric m_transitions =
    MR_COUNTER("meridian_hc_endpoint_transitions_total", "Endpoint state changes seen here");

void hc_round_metrics_register(void)
{
    m_probe_lat.bounds = mr_latency_buckets;
    m_probe_lat.nbounds = mr_latency_buckets_n;
    mr_metric_register(&m_probes);
    mr_metric_register(&m_probe_fail);
    mr_metric_register(&m_probe_lat);
    mr_metric_register(&m_transitions);
}

/* This agent's own view of a region, from its endpoints' state machines. */
hc_state hc_round_region_state(hc_agent *a, size_t r)
{
    const mr_region *g = &a->regions->regions[r];
    size_t up = 0, known = 0;
    for (size_t i = 0; i < g->n_relays; i++) {
        hc_endpoint *e = &a->eps[mr_regions_relay_index(a->regions, &g->relays[i])];
        up += e->fsm.state == HC_STATE_UP;
        known += e->fsm.state != HC_STATE_UNKNOWN;
    }
    if (mr_regions_region_healthy(g, up))
        return HC_STATE_UP;
    /* Down only once enough endpoints are known down that it cannot be up. */
    if (g->n_relays - (known - up) < (size_t)g->min_healthy_relays || known == g->n_relays)
        return HC_STATE_DOWN;
    return HC_STATE_UNKNOWN;
}

static void refresh_token(hc_agent *a)
{
    int64_t now = mr_now_us();
    if (a->token && now < a->token_renew_us)
        return;
    free(a->token);
    json_t *claims = json_pack("{s:s, s:I, s:I}", "sub", "meridian-healthcheck", "iat",
                               (json_int_t)(mr_wall_ms() / 1000), "exp",
                               (json_int_t)(mr_wall_ms() / 1000) + 600);
    a->token = mr_jwt_sign((const unsigned char *)a->probe_secret, strlen(a->probe_secret), claims);
    json_decref(claims);
    a->token_renew_us = now + 300 * 1000000LL;
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        a->eps[i].target.token = a->token;
}
static void round_step(hc_endpoint *e);

static void round_done(hc_endpoint *e, bool ok)
{
    hc_agent *a = e->agent;
    e->busy = false;
    double total = (double)(mr_now_us() - e->round_t0_us) / 1000.0;
    mr_metric_inc(&m_probes);
    if (ok)
        mr_metric_observe_us(&m_probe_lat, (uint64_t)(total * 1000));
    else
        mr_metric_inc(&m_probe_fail);
    e->hist_ts[e->hist_head] = mr_wall_ms();
    e->hist_ms[e->hist_head] = ok ? (float)total : -1.0f;
    e->hist_head = (e->hist_head + 1) % HC_HIST_LEN;
    if (e->hist_n < HC_HIST_LEN)
        e->hist_n++;
    if (ok)
        e->last_error[0] = '\0';
    hc_state before = e->fsm.state;
    if (hc_fsm_feed(&e->fsm, ok, mr_wall_ms())) {
        mr_metric_inc(&m_transitions);
        if (e->fsm.state == HC_STATE_DOWN)
            mr_log_warn("endpoint %s (%s): %s -> down: %s", e->ep->id, e->ep->address,
                        hc_state_name(before), e->last_error);
        else
            mr_log_info("endpoint %s (%s): %s -> %s", e->ep->id, e->ep->address,
                        hc_state_name(before), hc_state_name(e->fsm.state));
        hc_events_add(&a->events, "endpoint", "%s %s -> %s%s%s", e->ep->id, hc_state_name(before),
                      hc_state_name(e->fsm.state), e->fsm.state == HC_STATE_DOWN ? ": " : "",
                      e->fsm.state == HC_STATE_DOWN ? e->last_error : "");
    }
}

static void probe_cb(const hc_probe_result *res, void *ud)
{
    hc_endpoint *e = ud;
    hc_agent *a = e->agent;
    if (a->stopping) {
        e->busy = false;
        return;
    }
    e->lat[e->step] = res->latency_ms;
    if (res->cert_days_left >= 0) {
        e->cert_days_left = res->cert_days_left;
        if (res->cert_days_left < a->cert_warn_days)
            mr_log_warn("endpoint %s: TLS certificate expires in %.1f days", e->ep->id,
                        res->cert_days_left);
    }
    if (!res->ok) {
        snprintf(e->last_error, sizeof e->last_error, "%s: %.200s", hc_round_kinds[e->step]->name,
                 res->err);
        mr_log_debug("probe %s %s failed: %s", e->ep->id, hc_round_kinds[e->step]->name, res->err);
        round_done(e, false);
        return;
    }
    e->step++;
    if (e->step == HC_N_KINDS)
        round_done(e, true);
    else
        round_step(e);
}

static void round_step(hc_endpoint *e)
{
    hc_probe_result res = {.cert_days_left = -1};
    if (hc_round_kinds[e->step]->start(e->agent->base, &e->target, e->agent->timeout_ms, probe_cb,
                                       e, &res) != 0) {
        snprintf(e->last_error, sizeof e->last_error, "%s: %.200s", hc_round_kinds[e->step]->name,
                 res.err);
        round_done(e, false);
    }
}

void hc_round_timer_cb(int fd, short what, void *arg)
{
    hc_agent *a = arg;
    refresh_token(a);
    for (size_t i = 0; i < a->regions->n_relays_total; i++) {
        hc_endpoint *e = &a->eps[i];
        if (e->busy)
            continue;
        e->busy = true;
        e->step = 0;
        e->round_t0_us = mr_now_us();
        round_step(e);
    }
}