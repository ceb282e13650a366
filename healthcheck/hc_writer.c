/*
 * DNS writing (lease holder only) and the verification of what was written.
 */
#include "hc_writer.h"
#include "hc_agent_internal.h"
#include "hc_verify.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mr_metric m_writes = MR_COUNTER("meridian_hc_dns_writes_total", "Successful DNS writes");
static mr_metric m_write_err =
    MR_COUNTER("meridian_hc_dns_write_errors_total", "Failed DNS write attempts");
static mr_metric m_served = MR_HISTOGRAM("meridian_hc_dns_served_seconds",
                                         "Seconds from DNS decision to answer served", NULL, 0);
static mr_metric m_lease = MR_GAUGE("meridian_hc_lease_held", "1 while this agent writes DNS");

void hc_writer_metrics_register(void)
{
    m_served.bounds = mr_latency_buckets;
    m_served.nbounds = mr_latency_buckets_n;
    mr_metric_register(&m_writes);
    mr_metric_register(&m_write_err);
    mr_metric_register(&m_served);
    mr_metric_register(&m_lease);
}

typedef struct hc_verify_ctx {
    hc_agent *a;
    int gen;
    size_t geo;
    char ns[64];
    hc_verify *handle;
    struct hc_verify_ctx *next; /* the agent's list of running verifications */
} verify_ctx;

static void verify_unlink(hc_agent *a, verify_ctx *v)
{
    for (verify_ctx **p = &a->verifies; *p; p = &(*p)->next) {
        if (*p == v) {
            *p = v->next;
            return;
        }
    }
}

static void on_verified(bool ok, double seconds, const char *detail, void *ud)
{
    verify_ctx *v = ud;
    hc_agent *a = v->a;
    if (v->gen == a->verify_gen) {
        const char *g = a->regions->regions[v->geo].name;
        if (ok) {
            mr_log_info("DNS: %s serves [%s] to %s clients, %.2f s after the decision", v->ns,
                        detail, g, seconds);
            hc_events_add(&a->events, "served", "%s serves [%s] to %s, %.2f s after the decision",
                          v->ns, detail, g, seconds);
            mr_metric_observe_us(&m_served, (uint64_t)(seconds * 1e6));
            if (seconds > a->last_served_s)
                a->last_served_s = seconds;
        } else {
            mr_log_error("DNS: %s still answers [%s] to %s clients after %.1f s", v->ns, detail, g,
                         seconds);
            hc_events_add(&a->events, "error", "%s still answers [%s] to %s after %.1f s", v->ns,
                          detail, g, seconds);
            a->last_verify_ok = false;
        }
        snprintf(a->last_verify_detail, sizeof a->last_verify_detail, "%s", detail);
        a->verifies_pending--;
    }
    verify_unlink(a, v);
    free(v);
}

static void start_verification(hc_agent *a, const hc_dns_plan *before, const hc_dns_plan *after)
{
    a->verify_gen++;
    a->verifies_pending = 0;
    a->last_served_s = 0;
    a->last_verify_ok = true;
    if (!a->verify_enabled)
        return;
    for (size_t g = 0; g < after->n; g++) {
        bool changed = !before || before->n_addrs[g] != after->n_addrs[g];
        for (size_t i = 0; !changed && i < after->n_addrs[g]; i++)
            changed = strcmp(before->addrs[g][i], after->addrs[g][i]) != 0;
        if (!changed || !a->verify_source[g])
            continue;
        for (size_t n = 0; n < a->regions->n_nameservers; n++) {
            const mr_nameserver *ns = &a->regions->nameservers[n];
            verify_ctx *v = mr_calloc(1, sizeof *v);
            v->a = a;
            v->gen = a->verify_gen;
            v->geo = g;
            snprintf(v->ns, sizeof v->ns, "%s:%d", ns->address, ns->port);
            char err[256];
            v->handle = hc_verify_start(a->base, ns->address, ns->port, a->verify_source[g],
                                        a->regions->ws_fqdn, after->addrs[g], after->n_addrs[g],
                                        a->decision_us, a->verify_timeout_ms, on_verified, v, err,
                                        sizeof err);
            if (!v->handle) {
                mr_log_error("DNS verification for %s: %s", a->regions->regions[g].name, err);
                free(v);
                continue;
            }
            v->next = a->verifies;
            a->verifies = v;
            a->verifies_pending++;
        }
    }
}

static void on_written(int rc, const char *err, void *ud)
{
    hc_agent *a = ud;
    a->writing = false;
    a->last_write_wall_ms = mr_wall_ms();
    if (rc != 0) {
        a->writes_failed++;
        mr_metric_inc(&m_write_err);
        snprintf(a->last_write_error, sizeof a->last_write_error, "%s", err ? err : "failed");
        a->backoff_ms =
            a->backoff_ms ? (a->backoff_ms * 2 > 10000 ? 10000 : a->backoff_ms * 2) : 250;
        a->next_attempt_us = mr_now_us() + a->backoff_ms * 1000LL;
        mr_log_error("DNS write failed (retrying in %d ms): %s", a->backoff_ms,
                     a->last_write_error);
        hc_events_add(&a->events, "error", "DNS write failed: %.200s", a->last_write_error);
        hc_dns_plan_free(&a->in_flight);
        return;
    }
    a->writes_ok++;
    mr_metric_inc(&m_writes);
    a->backoff_ms = 0;
    a->last_write_error[0] = '\0';
    double s = (double)(mr_now_us() - a->decision_us) / 1e6;
    mr_log_info("DNS written (%.3f s after the decision): %s", s, a->in_flight.text);
    hc_events_add(&a->events, "write", "DNS: %s", a->in_flight.text);
    a->last_write_ok_wall_ms = a->last_write_wall_ms;
    snprintf(a->last_write_text, sizeof a->last_write_text, "%s", a->in_flight.text);
    /* A write that completes while the agent stops (hc_agent_stop waits for
     * it) starts no verification: those were already cancelled, and a new
     * one would outlive the loop. */
    if (!a->stopping)
        start_verification(a, a->have_written ? &a->written : NULL, &a->in_flight);
    if (a->have_written)
        hc_dns_plan_free(&a->written);
    a->written = a->in_flight;
    a->written_term = a->in_flight_term;
    memset(&a->in_flight, 0, sizeof a->in_flight);
    a->have_written = true;
}

/* A relay the plan still answers whose latest probe rounds here failed,
 * though it is not down yet: probably dying with the ones that already are
 * (relays of one region killed at once are not always seen down in the
 * same round). */
static bool answer_failing(hc_agent *a)
{
    for (size_t i = 0; i < a->regions->n_relays_total; i++) {
        const hc_endpoint *e = &a->eps[i];
        if (e->fsm.state == HC_STATE_UP && e->fsm.streak_fail > 0 &&
            hc_dns_plan_answers(&a->desired, e->ep->address))
            return true;
    }
    return false;
}

void hc_writer_step(hc_agent *a)
{
    hc_cluster_lease_info li;
    hc_cluster_lease(a->cluster, &li);
    bool held = li.held;
    mr_metric_set(&m_lease, held);
    if (held != a->was_holder) {
        if (held)
            hc_events_add(&a->events, "lease", "this agent now writes DNS (term %llu)",
                          (unsigned long long)li.term);
        else
            hc_events_add(&a->events, "lease", "this agent stopped writing DNS");
        a->was_holder = held;
    }
    /* Whoever writes next cannot trust what we wrote before, nor can we
     * after another term may have written in between: forget it. */
    if (!held || li.term != a->written_term) {
        if (a->have_written)
            hc_dns_plan_free(&a->written);
        a->have_written = false;
    }
    if (!held)
        return;
    if (!a->have_desired || a->writing)
        return;
    if (a->have_written && hc_dns_plan_equal(&a->desired, &a->written))
        return;
    if (mr_now_us() < a->next_attempt_us)
        return;
    /* Taking clients away from a relay leaving service is urgent; bringing
     * them back is not (they are served where they are). A plan that takes
     * no relay out waits until it has been the same for return_settle_ms, so
     * a region whose relays come back one probe round apart returns in one
     * write, not one per relay. */
    int64_t age_us = mr_now_us() - a->decision_us;
    bool urgent = !a->have_written || hc_dns_plan_drops(&a->written, &a->desired);
    if (!urgent && age_us < a->return_settle_ms * 1000LL)
        return;
    /* An urgent plan that still answers a relay failing right now waits
     * (at most until that relay would be down) so the region's clients move
     * once, not first to its last relay and then away. */
    if (urgent && a->have_written && answer_failing(a) &&
        age_us < (int64_t)a->interval_ms * (a->fsm_conf.down_failures + 1) * 1000)
        return;
    /* Without compare-and-set at the provider, start a write only if the
     * lease outlasts it (hc_agent_new checked that this always comes
     * round after a renewal); the next tick tries again. */
    if (!a->provider->cas &&
        li.left_us < (int64_t)(a->provider->timeout_ms + HC_WRITE_SLACK_MS) * 1000)
        return;
    hc_dns_plan_copy(&a->in_flight, &a->desired);
    a->in_flight_term = li.term;
    hc_dns_fence fence = {.term = li.term, .holder = a->agent_id};
    char err[300];
    a->writing = true;
    if (a->provider->ops->write(a->provider, &a->in_flight, &fence, on_written, a, err,
                                sizeof err) != 0) {
        a->writing = false;
        on_written(-1, err, a);
    }
}
void hc_writer_cancel_verifications(hc_agent *a)
{
    while (a->verifies) {
        verify_ctx *v = a->verifies;
        a->verifies = v->next;
        hc_verify_cancel(v->handle);
        free(v);
    }
}
