/*
 * The health agent.
 *
 * Everything runs on one libevent loop except NATS (see hc_cluster.c):
 *
 *   probe timer  every probe.interval_ms, each endpoint not already being
 *                probed starts a round: tcp, then readyz, then ws, each with
 *                its own time-out. The round's verdict (all passed) feeds the
 *                endpoint's state machine (hc_fsm).
 *   tick timer   every 100 ms: publish this agent's view (per region and per
 *                endpoint: up, down, unknown) when it changed or every
 *                publish_ms; recompute the quorum's verdicts; build the DNS
 *                plan from them; if this agent holds the lease and the plan
 *                differs from what it last wrote, write it (one write at a
 *                time, retried with exponential backoff); after a write,
 *                verify with c-ares that every nameserver serves the new
 *                answer to each changed geography, timing decision -> served.
 *
 * Observations from NATS arrive on libnats' thread and go into the quorum
 * table under `mu`; everything else is touched by the loop only.
 *
 * Planned drain: an operator flags a region (through any agent; the flag
 * lives in NATS KV so every agent and the next lease holder see it). A
 * drained region counts as unhealthy in the plan, so DNS moves first; once
 * the writer has seen the new answer served, it asks each of the region's
 * relays to drain its clients towards the fallback region
 * (POST <admin_url>/v1/drain), retrying until every relay accepted.
 */
#include "hc_agent.h"
#include "hc_cluster.h"
#include "hc_dns.h"
#include "hc_fsm.h"
#include "hc_http.h"
#include "hc_probe.h"
#include "hc_quorum.h"
#include "hc_status.h"
#include "hc_verify.h"
#include "mr_alloc.h"
#include "mr_config.h"
#include "mr_jwt.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_regions.h"
#include "mr_time.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HIST_LEN   240 /* latency samples kept per endpoint (2 min at 500 ms) */
#define EVENTS_LEN 200 /* timeline entries kept */
#define N_KINDS    3

static const hc_probe_kind *const kinds[N_KINDS] = {&hc_probe_tcp, &hc_probe_readyz, &hc_probe_ws};

static mr_metric m_probes = MR_COUNTER("meridian_hc_probes_total", "Probe rounds run");
static mr_metric m_probe_fail =
    MR_COUNTER("meridian_hc_probe_failures_total", "Probe rounds that failed");
static mr_metric m_probe_lat =
    MR_HISTOGRAM("meridian_hc_probe_round_seconds", "Duration of successful probe rounds", NULL, 0);
static mr_metric m_transitions =
    MR_COUNTER("meridian_hc_endpoint_transitions_total", "Endpoint state changes seen here");
static mr_metric m_writes = MR_COUNTER("meridian_hc_dns_writes_total", "Successful DNS writes");
static mr_metric m_write_err =
    MR_COUNTER("meridian_hc_dns_write_errors_total", "Failed DNS write attempts");
static mr_metric m_served = MR_HISTOGRAM("meridian_hc_dns_served_seconds",
                                         "Seconds from DNS decision to answer served", NULL, 0);
static mr_metric m_lease = MR_GAUGE("meridian_hc_lease_held", "1 while this agent writes DNS");
static mr_metric m_live = MR_GAUGE("meridian_hc_live_agents", "Agents heard from recently");
static mr_metric m_nats = MR_GAUGE("meridian_hc_nats_connected", "1 while connected to NATS");

typedef struct endpoint {
    hc_agent *agent;
    const mr_relay_ep *ep;
    size_t index; /* global relay index */
    char host[256];
    char path[256];
    hc_probe_target target;
    hc_fsm fsm;
    bool busy;
    int step;
    int64_t round_t0_us;
    double lat[N_KINDS]; /* last latency per kind, ms; -1 unknown */
    char last_error[256];
    double cert_days_left;
    int64_t hist_ts[HIST_LEN];
    float hist_ms[HIST_LEN]; /* < 0: failed round */
    size_t hist_n, hist_head;
} endpoint;

typedef struct event_rec {
    int64_t ts_ms;
    char kind[16];
    char text[240];
} event_rec;

struct hc_agent {
    struct event_base *base;
    struct evhttp *http;
    int port;
    char *listen;
    char *agent_id;
    char *region_name;
    char *api_key;
    char *probe_secret;
    char *token;
    int64_t token_renew_us;
    int interval_ms, timeout_ms, publish_ms, cert_warn_days;
    bool tls_verify;
    hc_fsm_conf fsm_conf;
    int live_ms, lease_ttl_ms, lease_renew_ms, lease_replicas;
    int verify_timeout_ms;
    bool verify_enabled;
    char *relay_api_key; /* relays' admin_api_key, "" when none */
    char **nats_urls;
    size_t n_nats;
    json_t *dns_conf;
    mr_cfg cfg;

    mr_regions *regions;
    size_t n_items; /* regions then relays */
    endpoint *eps;
    char **verify_source; /* per region: IPv4 source for verification, or NULL */

    struct event *probe_timer, *tick_timer;
    hc_cluster *cluster;
    hc_dns_provider *provider;

    pthread_mutex_t mu; /* guards quorum */
    hc_quorum quorum;
    hc_state verdict[HC_QUORUM_MAX_ITEMS]; /* loop's copy */
    int64_t verdict_since[HC_QUORUM_MAX_ITEMS];

    char last_votes[HC_QUORUM_MAX_ITEMS + 1];
    int64_t last_publish_us;

    /* DNS writing. */
    bool have_desired, have_written, writing;
    hc_dns_plan desired, written, in_flight;
    int64_t decision_us; /* when `desired` last changed (monotonic) */
    int64_t decision_wall_ms;
    int64_t next_attempt_us;
    int backoff_ms;
    int64_t writes_ok, writes_failed;
    char last_write_error[300];
    int64_t last_write_wall_ms;
    int64_t last_write_ok_wall_ms; /* shared with the other agents in our view */
    char last_write_text[600];
    /* The latest write another agent told us about (under mu until the tick
     * moves it into the timeline). */
    int64_t remote_write_ts;
    bool remote_write_pending;
    char remote_write_agent[HC_AGENT_ID_MAX];
    char remote_write_text[600];
    bool was_holder;

    /* Verification of the last write. */
    struct verify_ctx *verifies;
    bool stopping;
    int verifies_pending;
    int verify_gen;
    double last_served_s;
    bool last_verify_ok;
    char last_verify_detail[300];

    /* Drain. */
    bool *drained;
    bool *drain_notified;
    int64_t *drain_next_us;
    int *drain_pending;
    bool *drain_refusal_shown;
    bool *relays_drained;    /* this agent asked the region's relays to drain */
    int relay_calls_pending; /* every drain/undrain call in flight (for shutdown) */

    event_rec events[EVENTS_LEN];
    size_t n_events, events_head;
};

/* ---------- helpers ---------- */

static void add_event(hc_agent *a, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_event(hc_agent *a, const char *kind, const char *fmt, ...)
{
    event_rec *e = &a->events[a->events_head];
    a->events_head = (a->events_head + 1) % EVENTS_LEN;
    if (a->n_events < EVENTS_LEN)
        a->n_events++;
    e->ts_ms = mr_wall_ms();
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof e->text, fmt, ap);
    va_end(ap);
}

static char state_char(hc_state s)
{
    return s == HC_STATE_UP ? 'u' : s == HC_STATE_DOWN ? 'd' : '?';
}

static hc_state char_state(char c)
{
    return c == 'u' ? HC_STATE_UP : c == 'd' ? HC_STATE_DOWN : HC_STATE_UNKNOWN;
}

/* This agent's own view of a region, from its endpoints' state machines. */
static hc_state local_region_state(hc_agent *a, size_t r)
{
    const mr_region *g = &a->regions->regions[r];
    size_t up = 0, known = 0;
    for (size_t i = 0; i < g->n_relays; i++) {
        endpoint *e = &a->eps[mr_regions_relay_index(a->regions, &g->relays[i])];
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
                               (json_int_t)(mr_wall_ms() / 1000 + 600));
    a->token = mr_jwt_sign((const unsigned char *)a->probe_secret, strlen(a->probe_secret), claims);
    json_decref(claims);
    a->token_renew_us = now + 300 * 1000000LL;
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        a->eps[i].target.token = a->token;
}

/* ---------- probing ---------- */

static void round_step(endpoint *e);

static void round_done(endpoint *e, bool ok)
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
    e->hist_head = (e->hist_head + 1) % HIST_LEN;
    if (e->hist_n < HIST_LEN)
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
        add_event(a, "endpoint", "%s %s -> %s%s%s", e->ep->id, hc_state_name(before),
                  hc_state_name(e->fsm.state), e->fsm.state == HC_STATE_DOWN ? ": " : "",
                  e->fsm.state == HC_STATE_DOWN ? e->last_error : "");
    }
}

static void probe_cb(const hc_probe_result *res, void *ud)
{
    endpoint *e = ud;
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
        snprintf(e->last_error, sizeof e->last_error, "%s: %.200s", kinds[e->step]->name, res->err);
        mr_log_debug("probe %s %s failed: %s", e->ep->id, kinds[e->step]->name, res->err);
        round_done(e, false);
        return;
    }
    e->step++;
    if (e->step == N_KINDS)
        round_done(e, true);
    else
        round_step(e);
}

static void round_step(endpoint *e)
{
    hc_probe_result res = {.cert_days_left = -1};
    if (kinds[e->step]->start(e->agent->base, &e->target, e->agent->timeout_ms, probe_cb, e,
                              &res) != 0) {
        snprintf(e->last_error, sizeof e->last_error, "%s: %.200s", kinds[e->step]->name, res.err);
        round_done(e, false);
    }
}

static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
    hc_agent *a = arg;
    refresh_token(a);
    for (size_t i = 0; i < a->regions->n_relays_total; i++) {
        endpoint *e = &a->eps[i];
        if (e->busy)
            continue;
        e->busy = true;
        e->step = 0;
        e->round_t0_us = mr_now_us();
        round_step(e);
    }
}

/* ---------- observations and quorum ---------- */

static void on_observation(const char *data, size_t len, void *ud)
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
                v[i] = char_state(votes[i]);
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
        v[r] = local_region_state(a, r);
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        v[nr + i] = a->eps[i].fsm.state;
    for (size_t i = 0; i < a->n_items; i++)
        votes[i] = state_char(v[i]);
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

/* ---------- DNS writing and verification ---------- */

typedef struct verify_ctx {
    hc_agent *a;
    int gen;
    size_t geo;
    char ns[64];
    hc_verify *handle;
    struct verify_ctx *next; /* the agent's list of running verifications */
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
            add_event(a, "served", "%s serves [%s] to %s, %.2f s after the decision", v->ns, detail,
                      g, seconds);
            mr_metric_observe_us(&m_served, (uint64_t)(seconds * 1e6));
            if (seconds > a->last_served_s)
                a->last_served_s = seconds;
        } else {
            mr_log_error("DNS: %s still answers [%s] to %s clients after %.1f s", v->ns, detail, g,
                         seconds);
            add_event(a, "error", "%s still answers [%s] to %s after %.1f s", v->ns, detail, g,
                      seconds);
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
        add_event(a, "error", "DNS write failed: %.200s", a->last_write_error);
        hc_dns_plan_free(&a->in_flight);
        return;
    }
    a->writes_ok++;
    mr_metric_inc(&m_writes);
    a->backoff_ms = 0;
    a->last_write_error[0] = '\0';
    double s = (double)(mr_now_us() - a->decision_us) / 1e6;
    mr_log_info("DNS written (%.3f s after the decision): %s", s, a->in_flight.text);
    add_event(a, "write", "DNS: %s", a->in_flight.text);
    a->last_write_ok_wall_ms = a->last_write_wall_ms;
    snprintf(a->last_write_text, sizeof a->last_write_text, "%s", a->in_flight.text);
    start_verification(a, a->have_written ? &a->written : NULL, &a->in_flight);
    if (a->have_written)
        hc_dns_plan_free(&a->written);
    a->written = a->in_flight;
    memset(&a->in_flight, 0, sizeof a->in_flight);
    a->have_written = true;
}

static void maybe_write(hc_agent *a)
{
    bool held = hc_cluster_lease_held(a->cluster);
    mr_metric_set(&m_lease, held);
    if (held != a->was_holder) {
        add_event(a, "lease", "%s",
                  held ? "this agent now writes DNS" : "this agent stopped writing DNS");
        a->was_holder = held;
    }
    if (!held) {
        /* Whoever writes next cannot trust what we wrote before: forget it. */
        if (a->have_written)
            hc_dns_plan_free(&a->written);
        a->have_written = false;
        return;
    }
    if (!a->have_desired || a->writing)
        return;
    if (a->have_written && hc_dns_plan_equal(&a->desired, &a->written))
        return;
    if (mr_now_us() < a->next_attempt_us)
        return;
    hc_dns_plan_copy(&a->in_flight, &a->desired);
    char err[300];
    a->writing = true;
    if (a->provider->ops->write(a->provider, &a->in_flight, on_written, a, err, sizeof err) != 0) {
        a->writing = false;
        on_written(-1, err, a);
    }
}

/* ---------- drain ---------- */

typedef struct drain_call {
    hc_agent *a;
    size_t region;
    bool undrain;
    bool tracked; /* the writer's call: counted in drain_pending, retried */
    char relay[128];
} drain_call;

static void on_drain_reply(int status, const char *body, size_t len, const char *err, void *ud)
{
    drain_call *d = ud;
    hc_agent *a = d->a;
    const char *what = d->undrain ? "undrain" : "drain";
    if (status >= 200 && status < 300) {
        mr_log_info("%s: relay %s accepted", what, d->relay);
        if (d->undrain)
            add_event(a, "drain", "relay %s is back in service", d->relay);
        else
            add_event(a, "drain", "relay %s is moving its clients away", d->relay);
    } else {
        char why[160];
        if (status < 0)
            snprintf(why, sizeof why, "%s", err);
        else
            snprintf(why, sizeof why, "HTTP %d", status);
        mr_log_warn("%s: relay %s refused the request: %s%s", what, d->relay, why,
                    d->tracked ? " (retrying)" : "");
        /* Once per drain in the timeline; the log has every retry. */
        if (!a->drain_refusal_shown[d->region]) {
            a->drain_refusal_shown[d->region] = true;
            add_event(a, "error", "relay %s refused the %s request: %s%s", d->relay, what, why,
                      d->tracked ? " (retrying every 2 s)" : "");
        }
        if (d->tracked) {
            if (d->undrain)
                a->relays_drained[d->region] = true; /* try the undrain again */
            else
                a->drain_notified[d->region] = false;
            a->drain_next_us[d->region] = mr_now_us() + 2000000;
        }
    }
    if (d->tracked)
        a->drain_pending[d->region]--;
    a->relay_calls_pending--;
    free(d);
}

/* POST <admin_url>/v1/drain (with `body`) or /v1/undrain to every relay of
 * region r, with the relays' admin API key when one is configured. */
static void relay_calls(hc_agent *a, size_t r, bool undrain, const mr_buf *body, bool tracked)
{
    const mr_region *g = &a->regions->regions[r];
    char auth[600] = "";
    if (a->relay_api_key[0])
        snprintf(auth, sizeof auth, "Bearer %s", a->relay_api_key);
    for (size_t i = 0; i < g->n_relays; i++) {
        char url[600], err[256];
        size_t n = strlen(g->relays[i].admin_url);
        snprintf(url, sizeof url, "%.*s/v1/%s",
                 (int)(n && g->relays[i].admin_url[n - 1] == '/' ? n - 1 : n),
                 g->relays[i].admin_url, undrain ? "undrain" : "drain");
        drain_call *d = mr_calloc(1, sizeof *d);
        d->a = a;
        d->region = r;
        d->undrain = undrain;
        d->tracked = tracked;
        snprintf(d->relay, sizeof d->relay, "%s", g->relays[i].id);
        const char *hdrs[] = {"Content-Type", "application/json", auth[0] ? "Authorization" : NULL,
                              auth, NULL};
        if (hc_http_request(a->base, "POST", url, hdrs, body ? body->data : NULL,
                            body ? body->len : 0, a->timeout_ms, on_drain_reply, d, err,
                            sizeof err) != 0) {
            mr_log_warn("%s: %s: %s", undrain ? "undrain" : "drain", g->relays[i].id, err);
            free(d);
            if (tracked) {
                if (undrain)
                    a->relays_drained[r] = true;
                else
                    a->drain_notified[r] = false;
                a->drain_next_us[r] = mr_now_us() + 2000000;
            }
            continue;
        }
        if (tracked)
            a->drain_pending[r]++;
        a->relay_calls_pending++;
    }
}

/*
 * The writer's side of a drain. Once DNS no longer sends anyone to a drained
 * region (written and served), ask its relays to move their clients to where
 * DNS now points them. When the flag is cleared, take the relays back into
 * service; DNS returns to them once their probes prove them healthy again
 * (a drained relay answers /readyz with 503, so its endpoints went down).
 */
static void maybe_notify_drains(hc_agent *a)
{
    if (!a->have_written || a->writing || a->verifies_pending > 0 ||
        !hc_cluster_lease_held(a->cluster))
        return;
    int64_t now = mr_now_us();
    for (size_t r = 0; r < a->regions->n_regions; r++) {
        if (a->drain_pending[r] || now < a->drain_next_us[r])
            continue;
        if (!a->drained[r]) {
            a->drain_notified[r] = false;
            if (a->relays_drained[r]) {
                a->relays_drained[r] = false;
                a->drain_refusal_shown[r] = false;
                relay_calls(a, r, true, NULL, true);
            }
            continue;
        }
        if (a->drain_notified[r])
            continue;
        int target = a->written.route[r];
        if (target == (int)r)
            continue; /* DNS still answers this region: nowhere else to go */
        mr_buf body = MR_BUF_INIT;
        mr_buf_puts(&body, "{\"urls\":[");
        size_t k = 0;
        for (size_t g = 0; g < a->regions->n_regions; g++) {
            if (g == r || (target != MR_REGIONS_FAIL_OPEN && (int)g != target))
                continue;
            const mr_region *t = &a->regions->regions[g];
            for (size_t i = 0; i < t->n_relays; i++) {
                mr_buf_printf(&body, "%s", k++ ? "," : "");
                mr_buf_json_str(&body, t->relays[i].ws_url, strlen(t->relays[i].ws_url));
            }
        }
        mr_buf_puts(&body, "]}");
        a->drain_notified[r] = true;
        a->relays_drained[r] = true;
        relay_calls(a, r, false, &body, true);
        mr_buf_free(&body);
    }
}

/* ---------- the tick ---------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
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
        add_event(a, "write", "%s wrote DNS: %s", a->remote_write_agent, a->remote_write_text);
    }
    pthread_mutex_unlock(&a->mu);
    mr_metric_set(&m_live, (int64_t)live);

    size_t nr = a->regions->n_regions;
    for (size_t r = 0; r < nr; r++) {
        if (changed[r]) {
            mr_log_info("verdict: region %s is %s (%zu live agents)", a->regions->regions[r].name,
                        hc_state_name(a->verdict[r]), live);
            add_event(a, "verdict", "region %s is %s (majority of %zu agents)",
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
            add_event(a, "decision", "DNS should answer %s", p.text);
        } else {
            hc_dns_plan_free(&p);
        }
    }
    maybe_write(a);
    maybe_notify_drains(a);
}

/* ---------- configuration ---------- */

static char *default_source(const mr_region *g)
{
    /* Verify from an address inside the geography: the network address plus
     * 53, an unlikely relay address. Only loopback geographies get a default
     * (any 127.0.0.0/8 address can be bound on Linux); for real networks the
     * agent host rarely owns an address in each geography, so those need
     * verify.sources, and without one that geography is not verified. */
    for (size_t i = 0; i < g->n_cidrs; i++) {
        const mr_cidr *c = &g->cidrs[i];
        if (c->family != 4 || c->prefix > 26 || c->prefix < 8 || c->addr[0] != 127)
            continue;
        uint32_t v = (uint32_t)c->addr[0] << 24 | (uint32_t)c->addr[1] << 16 |
                     (uint32_t)c->addr[2] << 8 | c->addr[3];
        v = (v & (~0u << (32 - c->prefix))) + 53;
        struct in_addr in = {htonl(v)};
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in, buf, sizeof buf);
        return mr_strdup(buf);
    }
    return NULL;
}

static int load_config(hc_agent *a, const char *path, const char *listen_override, char *err,
                       size_t errlen)
{
    mr_cfg *c = &a->cfg;
    memset(c, 0, sizeof *c);
    c->file = path;
    json_t *root = mr_cfg_load(c, path);
    if (!root) {
        snprintf(err, errlen, "%s", c->err);
        return -1;
    }
    static const char *const keys[] = {"agent_id", "region", "regions_file", "listen",    "nats",
                                       "api_key",  "probe",  "thresholds",   "quorum",    "lease",
                                       "dns",      "verify", "drain",        "log_level", NULL};
    mr_cfg_check_keys(c, root, "", keys);
    const char *regions_file = mr_cfg_str(c, root, "", "regions_file", NULL);
    const char *region = mr_cfg_str(c, root, "", "region", NULL);
    const char *id = mr_cfg_str(c, root, "", "agent_id", NULL);
    const char *listen = mr_cfg_str(c, root, "", "listen", NULL);
    const char *api_key = mr_cfg_str(c, root, "", "api_key", "");
    const char *level = mr_cfg_str(c, root, "", "log_level", "info");
    json_t *nats = mr_cfg_str_array(c, root, "", "nats");
    json_t *probe = mr_cfg_obj(c, root, "", "probe");
    static const char *const pkeys[] = {"interval_ms", "timeout_ms",     "secret",
                                        "tls_verify",  "cert_warn_days", NULL};
    mr_cfg_check_keys(c, probe, "probe", pkeys);
    a->interval_ms = (int)mr_cfg_int(c, probe, "probe", "interval_ms", 500, 50, 60000);
    a->timeout_ms = (int)mr_cfg_int(c, probe, "probe", "timeout_ms", 1000, 10, 60000);
    const char *secret = mr_cfg_str(c, probe, "probe", "secret", NULL);
    a->tls_verify = mr_cfg_bool(c, probe, "probe", "tls_verify", true);
    a->cert_warn_days = (int)mr_cfg_int(c, probe, "probe", "cert_warn_days", 14, 0, 3650);
    json_t *th = mr_cfg_obj(c, root, "", "thresholds");
    static const char *const tkeys[] = {"down_window", "down_failures", "up_successes", NULL};
    mr_cfg_check_keys(c, th, "thresholds", tkeys);
    hc_fsm_conf fd = HC_FSM_CONF_DEFAULT;
    a->fsm_conf.down_window =
        (int)mr_cfg_int(c, th, "thresholds", "down_window", fd.down_window, 1, 32);
    a->fsm_conf.down_failures =
        (int)mr_cfg_int(c, th, "thresholds", "down_failures", fd.down_failures, 1, 32);
    a->fsm_conf.up_successes =
        (int)mr_cfg_int(c, th, "thresholds", "up_successes", fd.up_successes, 1, 1000);
    char ferr[128];
    if (!mr_cfg_failed(c) && hc_fsm_conf_check(&a->fsm_conf, ferr, sizeof ferr) != 0)
        mr_cfg_error(c, "thresholds", "%s", ferr);
    json_t *q = mr_cfg_obj(c, root, "", "quorum");
    static const char *const qkeys[] = {"agent_timeout_ms", "publish_ms", NULL};
    mr_cfg_check_keys(c, q, "quorum", qkeys);
    a->live_ms = (int)mr_cfg_int(c, q, "quorum", "agent_timeout_ms", 2000, 200, 600000);
    a->publish_ms = (int)mr_cfg_int(c, q, "quorum", "publish_ms", 500, 50, 60000);
    json_t *l = mr_cfg_obj(c, root, "", "lease");
    static const char *const lkeys[] = {"ttl_ms", "renew_ms", "replicas", NULL};
    mr_cfg_check_keys(c, l, "lease", lkeys);
    a->lease_ttl_ms = (int)mr_cfg_int(c, l, "lease", "ttl_ms", 3000, 500, 600000);
    a->lease_renew_ms = (int)mr_cfg_int(c, l, "lease", "renew_ms", 1000, 100, 600000);
    a->lease_replicas = (int)mr_cfg_int(c, l, "lease", "replicas", 1, 1, 5);
    if (!mr_cfg_failed(c) && a->lease_renew_ms * 2 > a->lease_ttl_ms)
        mr_cfg_error(c, "lease.renew_ms", "must be at most half of lease.ttl_ms");
    json_t *v = mr_cfg_obj(c, root, "", "verify");
    static const char *const vkeys[] = {"enabled", "timeout_ms", "sources", NULL};
    mr_cfg_check_keys(c, v, "verify", vkeys);
    a->verify_enabled = mr_cfg_bool(c, v, "verify", "enabled", true);
    a->verify_timeout_ms = (int)mr_cfg_int(c, v, "verify", "timeout_ms", 30000, 100, 600000);
    json_t *sources = mr_cfg_obj(c, v, "verify", "sources");
    json_t *d = mr_cfg_obj(c, root, "", "drain");
    static const char *const dkeys[] = {"relay_api_key", NULL};
    mr_cfg_check_keys(c, d, "drain", dkeys);
    const char *relay_key = mr_cfg_str(c, d, "drain", "relay_api_key", "");
    json_t *dns = mr_cfg_obj(c, root, "", "dns");
    /* Owned from here on: it outlives the root for the provider's construction. */
    a->dns_conf = dns ? json_incref(dns) : json_object();
    if (!regions_file)
        mr_cfg_error(c, "regions_file", "is required");
    if (!region)
        mr_cfg_error(c, "region", "is required (the region this agent runs in)");
    if (!secret)
        mr_cfg_error(c, "probe.secret",
                     "is required (the relays' auth secret, for the probe token)");
    if (!nats || json_array_size(nats) == 0)
        mr_cfg_error(c, "nats", "is required: a list of NATS URLs");
    int lvl = mr_log_level_parse(level);
    if (lvl < 0)
        mr_cfg_error(c, "log_level", "must be error, warn, info or debug");
    if (mr_cfg_failed(c)) {
        snprintf(err, errlen, "%s", c->err);
        json_decref(root);
        return -1;
    }
    mr_log_set_level((mr_log_level)lvl);
    a->regions = mr_regions_load(regions_file, err, errlen);
    if (!a->regions) {
        json_decref(root);
        return -1;
    }
    if (mr_regions_find(a->regions, region) < 0) {
        snprintf(err, errlen, "%s: region: \"%s\" is not in %s", path, region, regions_file);
        json_decref(root);
        return -1;
    }
    a->region_name = mr_strdup(region);
    a->agent_id = mr_strdup(id ? id : region);
    /* Without "listen", the agent serves where the regions file says its
     * region's agent is (regions[].healthcheck.url), else on 127.0.0.1:17400. */
    char from_file[300] = "127.0.0.1:17400";
    const char *hc_url = a->regions->regions[mr_regions_find(a->regions, region)].healthcheck_url;
    if (!listen && hc_url) {
        int tls, port;
        char host[256], upath[64];
        if (hc_http_parse_url(hc_url, &tls, host, sizeof host, &port, upath, sizeof upath) == 0)
            snprintf(from_file, sizeof from_file, "%s:%d", host, port);
    }
    a->listen = mr_strdup(listen_override ? listen_override : listen ? listen : from_file);
    a->api_key = mr_strdup(api_key);
    a->relay_api_key = mr_strdup(relay_key);
    a->probe_secret = mr_strdup(secret);
    a->n_nats = json_array_size(nats);
    a->nats_urls = mr_calloc(a->n_nats + 1, sizeof(char *));
    for (size_t i = 0; i < a->n_nats; i++)
        a->nats_urls[i] = mr_strdup(json_string_value(json_array_get(nats, i)));
    a->verify_source = mr_calloc(a->regions->n_regions, sizeof(char *));
    for (size_t r = 0; r < a->regions->n_regions; r++) {
        const char *s =
            sources ? json_string_value(json_object_get(sources, a->regions->regions[r].name))
                    : NULL;
        a->verify_source[r] = s ? mr_strdup(s) : default_source(&a->regions->regions[r]);
        if (!a->verify_source[r] && a->verify_enabled)
            mr_log_warn("verify: no source address inside %s's geography (set verify.sources); "
                        "its answers will not be checked after writes",
                        a->regions->regions[r].name);
    }
    json_decref(root);
    a->n_items = a->regions->n_regions + a->regions->n_relays_total;
    if (a->n_items > HC_QUORUM_MAX_ITEMS) {
        snprintf(err, errlen, "%s: too many regions and relays (at most %d items)", regions_file,
                 HC_QUORUM_MAX_ITEMS);
        return -1;
    }
    return 0;
}

hc_agent *hc_agent_new(struct event_base *base, const char *config_path,
                       const char *listen_override, char *err, size_t errlen)
{
    hc_agent *a = mr_calloc(1, sizeof *a);
    a->base = base;
    pthread_mutex_init(&a->mu, NULL);
    if (load_config(a, config_path, listen_override, err, errlen) != 0)
        goto err;
    mr_cfg dc = {.file = config_path};
    a->provider = hc_dns_new(base, a->regions, &dc, a->dns_conf);
    if (!a->provider) {
        snprintf(err, errlen, "%s", dc.err);
        goto err;
    }
    size_t nrel = a->regions->n_relays_total;
    a->eps = mr_calloc(nrel ? nrel : 1, sizeof *a->eps);
    for (size_t r = 0; r < a->regions->n_regions; r++) {
        const mr_region *g = &a->regions->regions[r];
        for (size_t i = 0; i < g->n_relays; i++) {
            const mr_relay_ep *ep = &g->relays[i];
            size_t k = mr_regions_relay_index(a->regions, ep);
            endpoint *e = &a->eps[k];
            e->agent = a;
            e->ep = ep;
            e->index = k;
            int tls = 0, port = 0;
            char url[600];
            /* hc_http_parse_url knows http(s); ws(s) URLs have the same shape. */
            snprintf(url, sizeof url, "%s%s",
                     strncmp(ep->ws_url, "wss://", 6) == 0 ? "https://" : "http://",
                     strstr(ep->ws_url, "://") ? strstr(ep->ws_url, "://") + 3 : ep->ws_url);
            if (hc_http_parse_url(url, &tls, e->host, sizeof e->host, &port, e->path,
                                  sizeof e->path) != 0) {
                snprintf(e->host, sizeof e->host, "%s", ep->address);
                snprintf(e->path, sizeof e->path, "/");
            }
            e->target = (hc_probe_target){.address = ep->address,
                                          .port = ep->port,
                                          .tls = tls,
                                          .host = e->host,
                                          .path = e->path,
                                          .admin_url = ep->admin_url,
                                          .tls_verify = a->tls_verify};
            hc_fsm_init(&e->fsm, &a->fsm_conf);
            e->cert_days_left = -1;
            for (int kk = 0; kk < N_KINDS; kk++)
                e->lat[kk] = -1;
        }
    }
    hc_quorum_init(&a->quorum, a->n_items, a->live_ms);
    a->drained = mr_calloc(a->regions->n_regions, sizeof(bool));
    a->drain_notified = mr_calloc(a->regions->n_regions, sizeof(bool));
    a->drain_next_us = mr_calloc(a->regions->n_regions, sizeof(int64_t));
    a->drain_pending = mr_calloc(a->regions->n_regions, sizeof(int));
    a->drain_refusal_shown = mr_calloc(a->regions->n_regions, sizeof(bool));
    a->relays_drained = mr_calloc(a->regions->n_regions, sizeof(bool));
    return a;
err:
    hc_agent_free(a);
    return NULL;
}

int hc_agent_start(hc_agent *a, char *err, size_t errlen)
{
    static bool registered;
    if (!registered) {
        registered = true;
        m_probe_lat.bounds = mr_latency_buckets;
        m_probe_lat.nbounds = mr_latency_buckets_n;
        m_served.bounds = mr_latency_buckets;
        m_served.nbounds = mr_latency_buckets_n;
        mr_metric *all[] = {&m_probes,    &m_probe_fail, &m_probe_lat, &m_transitions, &m_writes,
                            &m_write_err, &m_served,     &m_lease,     &m_live,        &m_nats};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            mr_metric_register(all[i]);
    }
    if (hc_verify_global_init() != 0) {
        snprintf(err, errlen, "c-ares initialisation failed");
        return -1;
    }
    char host[256];
    int port;
    if (mr_parse_hostport(a->listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "listen address \"%s\" is not host:port", a->listen);
        return -1;
    }
    a->http = evhttp_new(a->base);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_max_body_size(a->http, 65536);
    evhttp_set_timeout(a->http, 10);
    struct evhttp_bound_socket *s =
        evhttp_bind_socket_with_handle(a->http, host[0] ? host : "0.0.0.0", (ev_uint16_t)port);
    if (!s) {
        snprintf(err, errlen, "cannot bind %s", a->listen);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &sl) == 0)
        a->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    hc_status_attach(a->http, a);

    const char **names = mr_calloc(a->regions->n_regions, sizeof(char *));
    for (size_t r = 0; r < a->regions->n_regions; r++)
        names[r] = a->regions->regions[r].name;
    hc_cluster_conf cc = {.urls = (const char *const *)a->nats_urls,
                          .n_urls = a->n_nats,
                          .agent_id = a->agent_id,
                          .lease_ttl_ms = a->lease_ttl_ms,
                          .lease_renew_ms = a->lease_renew_ms,
                          .replicas = a->lease_replicas,
                          .regions = names,
                          .n_regions = a->regions->n_regions};
    a->cluster = hc_cluster_start(&cc, on_observation, a, err, errlen);
    free(names);
    if (!a->cluster)
        return -1;

    refresh_token(a);
    a->probe_timer = event_new(a->base, -1, EV_PERSIST, on_probe_timer, a);
    struct timeval pt = {a->interval_ms / 1000, (a->interval_ms % 1000) * 1000};
    event_add(a->probe_timer, &pt);
    a->tick_timer = event_new(a->base, -1, EV_PERSIST, on_tick, a);
    struct timeval tt = {0, 100000};
    event_add(a->tick_timer, &tt);
    on_probe_timer(-1, 0, a);
    mr_log_info("agent %s (region %s) on %s: %zu regions, %zu relays, DNS via %s", a->agent_id,
                a->region_name, a->listen, a->regions->n_regions, a->regions->n_relays_total,
                a->provider->ops->name);
    add_event(a, "start", "agent %s started", a->agent_id);
    return 0;
}

static bool in_flight(hc_agent *a)
{
    if (a->writing || a->relay_calls_pending > 0)
        return true;
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        if (a->eps[i].busy)
            return true;
    for (size_t r = 0; r < a->regions->n_regions; r++)
        if (a->drain_pending[r])
            return true;
    return false;
}

void hc_agent_stop(hc_agent *a)
{
    /* Probes, provider calls and drain calls all end within their time-outs;
     * wait for them (bounded) so nothing they own is left behind, and cancel
     * verifications, which may run for many seconds. */
    a->stopping = true;
    if (a->probe_timer)
        event_del(a->probe_timer);
    if (a->tick_timer)
        event_del(a->tick_timer);
    while (a->verifies) {
        verify_ctx *v = a->verifies;
        a->verifies = v->next;
        hc_verify_cancel(v->handle);
        free(v);
    }
    int wait_ms = a->timeout_ms > a->provider->timeout_ms ? a->timeout_ms : a->provider->timeout_ms;
    int64_t deadline = mr_now_us() + (int64_t)(wait_ms + 1000) * 1000;
    while (in_flight(a) && mr_now_us() < deadline)
        event_base_loop(a->base, EVLOOP_ONCE);
    /* Deferred releases (connections, channels) run on the next turns. */
    for (int i = 0; i < 3; i++)
        event_base_loop(a->base, EVLOOP_NONBLOCK);
}

int hc_agent_port(hc_agent *a)
{
    return a->port;
}

void hc_agent_free(hc_agent *a)
{
    if (!a)
        return;
    if (a->probe_timer)
        event_free(a->probe_timer);
    if (a->tick_timer)
        event_free(a->tick_timer);
    hc_cluster_stop(a->cluster);
    if (a->http)
        evhttp_free(a->http);
    hc_dns_free(a->provider);
    if (a->have_desired)
        hc_dns_plan_free(&a->desired);
    if (a->have_written)
        hc_dns_plan_free(&a->written);
    if (a->regions) {
        for (size_t r = 0; r < a->regions->n_regions && a->verify_source; r++)
            free(a->verify_source[r]);
    }
    free(a->verify_source);
    for (size_t i = 0; i < a->n_nats; i++)
        free(a->nats_urls[i]);
    free(a->nats_urls);
    free(a->eps);
    free(a->drained);
    free(a->drain_notified);
    free(a->drain_next_us);
    free(a->drain_pending);
    free(a->drain_refusal_shown);
    free(a->relays_drained);
    mr_regions_free(a->regions);
    json_decref(a->dns_conf);
    free(a->listen);
    free(a->agent_id);
    free(a->region_name);
    free(a->api_key);
    free(a->relay_api_key);
    free(a->probe_secret);
    free(a->token);
    free(a);
}

/* ---------- status ---------- */

static void json_str(mr_buf *b, const char *s)
{
    mr_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

void hc_agent_status_json(hc_agent *a, mr_buf *b)
{
    size_t nr = a->regions->n_regions;
    int64_t now_ms = mr_now_us() / 1000;
    char holder[128];
    hc_cluster_lease_holder(a->cluster, holder, sizeof holder);
    bool held = hc_cluster_lease_held(a->cluster);
    mr_buf_puts(b, "{\"agent\":{\"id\":");
    json_str(b, a->agent_id);
    mr_buf_puts(b, ",\"region\":");
    json_str(b, a->region_name);
    mr_buf_printf(b, ",\"nats\":%s,\"lease_held\":%s,\"lease_holder\":",
                  hc_cluster_connected(a->cluster) ? "true" : "false", held ? "true" : "false");
    json_str(b, holder);
    mr_buf_printf(b, ",\"now\":%lld,\"probe_interval_ms\":%d},", (long long)mr_wall_ms(),
                  a->interval_ms);
    mr_buf_printf(b,
                  "\"thresholds\":{\"down_window\":%d,\"down_failures\":%d,\"up_successes\":%d},",
                  a->fsm_conf.down_window, a->fsm_conf.down_failures, a->fsm_conf.up_successes);
    mr_buf_puts(b, "\"regions\":[");
    for (size_t r = 0; r < nr; r++) {
        const mr_region *g = &a->regions->regions[r];
        mr_buf_printf(b, "%s{\"name\":", r ? "," : "");
        json_str(b, g->name);
        mr_buf_printf(b,
                      ",\"verdict\":\"%s\",\"since\":%lld,\"local\":\"%s\",\"drained\":%s,"
                      "\"min_healthy_relays\":%d,\"failover\":[",
                      hc_state_name(a->verdict[r]), (long long)a->verdict_since[r],
                      hc_state_name(local_region_state(a, r)), a->drained[r] ? "true" : "false",
                      g->min_healthy_relays);
        for (size_t i = 0; i < g->n_failover; i++) {
            mr_buf_printf(b, "%s", i ? "," : "");
            json_str(b, a->regions->regions[g->failover[i]].name);
        }
        mr_buf_puts(b, "],\"endpoints\":[");
        for (size_t i = 0; i < g->n_relays; i++) {
            endpoint *e = &a->eps[mr_regions_relay_index(a->regions, &g->relays[i])];
            mr_buf_printf(b, "%s{\"id\":", i ? "," : "");
            json_str(b, e->ep->id);
            mr_buf_puts(b, ",\"address\":");
            json_str(b, e->ep->address);
            mr_buf_puts(b, ",\"ws_url\":");
            json_str(b, e->ep->ws_url);
            mr_buf_printf(b,
                          ",\"state\":\"%s\",\"verdict\":\"%s\",\"since\":%lld,"
                          "\"recent_failures\":%d,\"latency_ms\":{",
                          hc_state_name(e->fsm.state), hc_state_name(a->verdict[nr + e->index]),
                          (long long)e->fsm.since_ms, hc_fsm_recent_failures(&e->fsm));
            for (int k = 0; k < N_KINDS; k++) {
                if (e->lat[k] < 0)
                    mr_buf_printf(b, "%s\"%s\":null", k ? "," : "", kinds[k]->name);
                else
                    mr_buf_printf(b, "%s\"%s\":%.2f", k ? "," : "", kinds[k]->name, e->lat[k]);
            }
            mr_buf_puts(b, "},\"last_error\":");
            json_str(b, e->last_error);
            if (e->cert_days_left >= 0)
                mr_buf_printf(b, ",\"cert_days_left\":%.1f", e->cert_days_left);
            mr_buf_puts(b, ",\"history\":[");
            for (size_t h = 0; h < e->hist_n; h++) {
                size_t idx = (e->hist_head + HIST_LEN - e->hist_n + h) % HIST_LEN;
                if (e->hist_ms[idx] < 0)
                    mr_buf_printf(b, "%s[%lld,null]", h ? "," : "", (long long)e->hist_ts[idx]);
                else
                    mr_buf_printf(b, "%s[%lld,%.2f]", h ? "," : "", (long long)e->hist_ts[idx],
                                  e->hist_ms[idx]);
            }
            mr_buf_puts(b, "]}");
        }
        mr_buf_puts(b, "]}");
    }
    mr_buf_puts(b, "],\"agents\":[");
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->quorum.n_agents; i++) {
        hc_quorum_agent *q = &a->quorum.agents[i];
        int64_t age = now_ms - q->seen_ms;
        mr_buf_printf(b, "%s{\"id\":", i ? "," : "");
        json_str(b, q->id);
        mr_buf_puts(b, ",\"region\":");
        json_str(b, q->region);
        mr_buf_printf(b, ",\"live\":%s,\"lease\":%s,\"age_ms\":%lld,\"votes\":\"",
                      age <= a->quorum.live_ms ? "true" : "false", q->lease ? "true" : "false",
                      (long long)age);
        for (size_t k = 0; k < a->n_items; k++)
            mr_buf_putc(b, state_char(q->votes[k]));
        mr_buf_puts(b, "\"}");
    }
    pthread_mutex_unlock(&a->mu);
    mr_buf_printf(b, "],\"dns\":{\"provider\":\"%s\",\"name\":", a->provider->ops->name);
    json_str(b, a->regions->ws_fqdn);
    mr_buf_printf(b, ",\"ttl\":%d,\"desired\":", a->regions->ttl);
    if (a->have_desired)
        hc_dns_plan_json(&a->desired, b);
    else
        mr_buf_puts(b, "null");
    mr_buf_puts(b, ",\"written\":");
    if (a->have_written)
        hc_dns_plan_json(&a->written, b);
    else
        mr_buf_puts(b, "null");
    mr_buf_printf(b, ",\"writing\":%s,\"writes\":%lld,\"write_errors\":%lld,\"last_error\":",
                  a->writing ? "true" : "false", (long long)a->writes_ok,
                  (long long)a->writes_failed);
    json_str(b, a->last_write_error);
    mr_buf_printf(b,
                  ",\"decision_at\":%lld,\"last_write_at\":%lld,\"verify_pending\":%d,"
                  "\"last_served_seconds\":%.3f,\"last_verify_ok\":%s},",
                  (long long)a->decision_wall_ms, (long long)a->last_write_wall_ms,
                  a->verifies_pending, a->last_served_s, a->last_verify_ok ? "true" : "false");
    mr_buf_puts(b, "\"events\":[");
    for (size_t i = 0; i < a->n_events; i++) {
        size_t idx = (a->events_head + EVENTS_LEN - a->n_events + i) % EVENTS_LEN;
        event_rec *e = &a->events[idx];
        mr_buf_printf(b, "%s{\"ts\":%lld,\"kind\":", i ? "," : "", (long long)e->ts_ms);
        json_str(b, e->kind);
        mr_buf_puts(b, ",\"text\":");
        json_str(b, e->text);
        mr_buf_putc(b, '}');
    }
    mr_buf_puts(b, "]}");
}

void hc_agent_metrics(hc_agent *a, mr_buf *b)
{
    size_t nr = a->regions->n_regions;
    mr_buf_puts(b, "# HELP meridian_hc_region_up 1 when the quorum's verdict is up.\n"
                   "# TYPE meridian_hc_region_up gauge\n");
    for (size_t r = 0; r < nr; r++)
        mr_buf_printf(b, "meridian_hc_region_up{region=\"%s\"} %d\n", a->regions->regions[r].name,
                      a->verdict[r] == HC_STATE_UP);
    mr_buf_puts(b, "# HELP meridian_hc_region_drained 1 while the region is drained.\n"
                   "# TYPE meridian_hc_region_drained gauge\n");
    for (size_t r = 0; r < nr; r++)
        mr_buf_printf(b, "meridian_hc_region_drained{region=\"%s\"} %d\n",
                      a->regions->regions[r].name, a->drained[r]);
    mr_buf_puts(b, "# HELP meridian_hc_endpoint_up 1 when this agent sees the endpoint up.\n"
                   "# TYPE meridian_hc_endpoint_up gauge\n");
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        mr_buf_printf(b, "meridian_hc_endpoint_up{relay=\"%s\"} %d\n", a->eps[i].ep->id,
                      a->eps[i].fsm.state == HC_STATE_UP);
    mr_buf_puts(b, "# HELP meridian_hc_probe_latency_ms Last probe latency by kind.\n"
                   "# TYPE meridian_hc_probe_latency_ms gauge\n");
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        for (int k = 0; k < N_KINDS; k++)
            if (a->eps[i].lat[k] >= 0)
                mr_buf_printf(b, "meridian_hc_probe_latency_ms{relay=\"%s\",kind=\"%s\"} %.3f\n",
                              a->eps[i].ep->id, kinds[k]->name, a->eps[i].lat[k]);
    mr_buf_puts(b, "# HELP meridian_hc_cert_days_left Days until the relay's TLS certificate "
                   "expires.\n# TYPE meridian_hc_cert_days_left gauge\n");
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        if (a->eps[i].cert_days_left >= 0)
            mr_buf_printf(b, "meridian_hc_cert_days_left{relay=\"%s\"} %.1f\n", a->eps[i].ep->id,
                          a->eps[i].cert_days_left);
}

bool hc_agent_ready(hc_agent *a, mr_buf *detail)
{
    bool nats = hc_cluster_connected(a->cluster);
    mr_buf_printf(detail, "{\"nats\":\"%s\",\"lease_held\":%s}",
                  nats ? "connected" : "disconnected",
                  hc_cluster_lease_held(a->cluster) ? "true" : "false");
    return nats;
}

int hc_agent_drain(hc_agent *a, const char *region, bool drained, char *err, size_t errlen)
{
    int r = mr_regions_find(a->regions, region);
    if (r < 0) {
        snprintf(err, errlen, "unknown region \"%s\"", region);
        return -1;
    }
    if (hc_cluster_set_drain(a->cluster, region, drained, err, errlen) != 0)
        return -1;
    a->drained[r] = drained;
    /* Undraining is safe in any order, so the agent that took the request
     * tells the relays at once (the writer does too): they return to
     * service, and DNS follows once their probes pass again. */
    if (!drained)
        relay_calls(a, (size_t)r, true, NULL, false);
    mr_log_info("region %s %s by operator request", region, drained ? "drained" : "undrained");
    add_event(a, "drain", "region %s %s by operator", region, drained ? "drained" : "undrained");
    return 0;
}

const char *hc_agent_api_key(hc_agent *a)
{
    return a->api_key;
}
