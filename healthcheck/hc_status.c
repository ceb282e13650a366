/*
 * HTTP routes of the agent. The dashboard is one self-contained HTML file
 * (dashboard.html, embedded at build time): it polls /v1/status once a
 * second and draws everything itself, so it works offline and needs no
 * framework. The drain API compares the key in constant time.
 */
#include "hc_status.h"
#include "hc_agent_internal.h"
#include "hc_drain.h"
#include "hc_round.h"
#include "mr_admin.h"
#include "mr_buf.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern const unsigned char hc_dashboard_html[];
extern const size_t hc_dashboard_html_len;

/* ---------- status ---------- */

static void json_str(mr_buf *b, const char *s)
{
    mr_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void status_json(hc_agent *a, mr_buf *b)
{
    size_t nr = a->regions->n_regions;
    int64_t now_ms = mr_now_us() / 1000;
    hc_cluster_lease_info li;
    hc_cluster_lease(a->cluster, &li);
    char holder[HC_AGENT_ID_MAX];
    pthread_mutex_lock(&a->mu);
    snprintf(holder, sizeof holder, "%s", a->holder_id);
    uint64_t term = a->holder_term;
    int64_t since = a->holder_since_wall_ms;
    pthread_mutex_unlock(&a->mu);
    int64_t known = a->holder_seen_us > a->started_us ? a->holder_seen_us : a->started_us;
    mr_buf_puts(b, "{\"agent\":{\"id\":");
    json_str(b, a->agent_id);
    mr_buf_puts(b, ",\"region\":");
    json_str(b, a->region_name);
    mr_buf_printf(b, ",\"nats\":%s,\"lease_held\":%s,\"lease_holder\":",
                  hc_cluster_connected(a->cluster) ? "true" : "false", li.held ? "true" : "false");
    json_str(b, holder);
    mr_buf_printf(b, ",\"now\":%lld,\"probe_interval_ms\":%d},", (long long)mr_wall_ms(),
                  a->interval_ms);
    /* The lease: who holds it (as this agent knows), since when, its term
     * (the fencing token DNS writes carry), and this agent's own part. */
    mr_buf_puts(b, "\"lease\":{\"holder\":");
    if (holder[0])
        json_str(b, holder);
    else
        mr_buf_puts(b, "null");
    mr_buf_printf(b,
                  ",\"term\":%llu,\"since\":%lld,\"unheld_seconds\":%.1f,\"held_here\":%s,"
                  "\"left_ms\":%lld,\"member\":",
                  (unsigned long long)(holder[0] ? term : 0), (long long)(holder[0] ? since : 0),
                  holder[0] ? 0.0 : (double)(mr_now_us() - known) / 1e6, li.held ? "true" : "false",
                  (long long)(li.left_us / 1000));
    json_str(b, a->lease_id);
    mr_buf_puts(b, ",\"promised_to\":");
    json_str(b, li.promised);
    mr_buf_printf(b, ",\"voted_term\":%llu,\"members\":[", (unsigned long long)li.voted_term);
    for (size_t i = 0; i < a->n_members; i++) {
        mr_buf_puts(b, i ? "," : "");
        json_str(b, a->members[i]);
    }
    mr_buf_printf(b, "],\"ttl_ms\":%d},", a->lease_ttl_ms);
    mr_buf_printf(b,
                  "\"thresholds\":{\"down_window\":%d,\"down_failures\":%d,\"up_successes\":%d,"
                  "\"return_settle_ms\":%d},",
                  a->fsm_conf.down_window, a->fsm_conf.down_failures, a->fsm_conf.up_successes,
                  a->return_settle_ms);
    mr_buf_puts(b, "\"regions\":[");
    for (size_t r = 0; r < nr; r++) {
        const mr_region *g = &a->regions->regions[r];
        mr_buf_printf(b, "%s{\"name\":", r ? "," : "");
        json_str(b, g->name);
        mr_buf_printf(b,
                      ",\"verdict\":\"%s\",\"since\":%lld,\"local\":\"%s\",\"drained\":%s,"
                      "\"min_healthy_relays\":%d,\"failover\":[",
                      hc_state_name(a->verdict[r]), (long long)a->verdict_since[r],
                      hc_state_name(hc_round_region_state(a, r)), a->drained[r] ? "true" : "false",
                      g->min_healthy_relays);
        for (size_t i = 0; i < g->n_failover; i++) {
            mr_buf_printf(b, "%s", i ? "," : "");
            json_str(b, a->regions->regions[g->failover[i]].name);
        }
        mr_buf_puts(b, "],\"endpoints\":[");
        for (size_t i = 0; i < g->n_relays; i++) {
            hc_endpoint *e = &a->eps[mr_regions_relay_index(a->regions, &g->relays[i])];
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
            for (int k = 0; k < HC_N_KINDS; k++) {
                if (e->lat[k] < 0)
                    mr_buf_printf(b, "%s\"%s\":null", k ? "," : "", hc_round_kinds[k]->name);
                else
                    mr_buf_printf(b, "%s\"%s\":%.2f", k ? "," : "", hc_round_kinds[k]->name,
                                  e->lat[k]);
            }
            mr_buf_puts(b, "},\"last_error\":");
            json_str(b, e->last_error);
            if (e->cert_days_left >= 0)
                mr_buf_printf(b, ",\"cert_days_left\":%.1f", e->cert_days_left);
            mr_buf_puts(b, ",\"history\":[");
            for (size_t h = 0; h < e->hist_n; h++) {
                size_t idx = (e->hist_head + HC_HIST_LEN - e->hist_n + h) % HC_HIST_LEN;
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
            mr_buf_putc(b, hc_state_char(q->votes[k]));
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
    mr_buf_puts(b, "\"events\":");
    hc_events_json(&a->events, b);
    mr_buf_putc(b, '}');
}

static void agent_metrics(hc_agent *a, mr_buf *b)
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
    /* Per relay, labelled with its region so dashboards can aggregate by region. Units are
     * Prometheus base units (seconds), as `promtool check metrics` requires. */
    mr_buf_puts(b, "# HELP meridian_hc_endpoint_up 1 when this agent sees the endpoint up.\n"
                   "# TYPE meridian_hc_endpoint_up gauge\n");
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        mr_buf_printf(b, "meridian_hc_endpoint_up{region=\"%s\",relay=\"%s\"} %d\n",
                      a->regions->regions[a->eps[i].ep->region].name, a->eps[i].ep->id,
                      a->eps[i].fsm.state == HC_STATE_UP);
    mr_buf_puts(b, "# HELP meridian_hc_probe_latency_seconds Last probe latency by kind.\n"
                   "# TYPE meridian_hc_probe_latency_seconds gauge\n");
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        for (int k = 0; k < HC_N_KINDS; k++)
            if (a->eps[i].lat[k] >= 0)
                mr_buf_printf(b,
                              "meridian_hc_probe_latency_seconds{region=\"%s\",relay=\"%s\","
                              "kind=\"%s\"} %.6f\n",
                              a->regions->regions[a->eps[i].ep->region].name, a->eps[i].ep->id,
                              hc_round_kinds[k]->name, a->eps[i].lat[k] / 1000.0);
    mr_buf_puts(b, "# HELP meridian_hc_cert_expires_in_seconds Seconds until the relay's TLS "
                   "certificate expires (wss:// endpoints).\n"
                   "# TYPE meridian_hc_cert_expires_in_seconds gauge\n");
    for (size_t i = 0; i < a->regions->n_relays_total; i++)
        if (a->eps[i].cert_days_left >= 0)
            mr_buf_printf(b,
                          "meridian_hc_cert_expires_in_seconds{region=\"%s\",relay=\"%s\"} %.0f\n",
                          a->regions->regions[a->eps[i].ep->region].name, a->eps[i].ep->id,
                          a->eps[i].cert_days_left * 86400.0);
}

static bool agent_ready(hc_agent *a, mr_buf *detail)
{
    bool nats = hc_cluster_connected(a->cluster);
    hc_cluster_lease_info li;
    hc_cluster_lease(a->cluster, &li);
    mr_buf_putc(detail, '{');
    hc_cluster_describe(a->cluster, detail);
    mr_buf_printf(detail, ",\"lease_held\":%s,\"term\":%llu}", li.held ? "true" : "false",
                  (unsigned long long)li.term);
    return nats;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, int code, const char *reason, mr_buf *body)
{
    reply(req, code, reason, "application/json", body->data ? body->data : "", body->len);
}

static void on_status(struct evhttp_request *req, void *arg)
{
    mr_buf body = MR_BUF_INIT;
    status_json(arg, &body);
    mr_buf_putc(&body, '\n');
    reply_json(req, 200, "OK", &body);
    mr_buf_free(&body);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    mr_buf body = MR_BUF_INIT;
    mr_metrics_render(&body);
    agent_metrics(arg, &body);
    reply(req, 200, "OK", "text/plain; version=0.0.4", body.data ? body.data : "", body.len);
    mr_buf_free(&body);
}

static bool ready_cb(void *ud, mr_buf *detail)
{
    return agent_ready(ud, detail);
}

static void error_json(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
    mr_buf body = MR_BUF_INIT;
    mr_buf_puts(&body, "{\"error\":");
    mr_buf_json_str(&body, msg, strlen(msg));
    mr_buf_puts(&body, "}\n");
    reply_json(req, code, reason, &body);
    mr_buf_free(&body);
}

static void on_other(struct evhttp_request *req, void *arg)
{
    hc_agent *a = arg;
    const char *uri = evhttp_request_get_uri(req);
    char path[512];
    snprintf(path, sizeof path, "%s", uri);
    path[strcspn(path, "?#")] = '\0';
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        reply(req, 200, "OK", "text/html; charset=utf-8", (const char *)hc_dashboard_html,
              hc_dashboard_html_len);
        return;
    }
    char region[128], action[16];
    if (sscanf(path, "/v1/regions/%127[^/]/%15[a-z]", region, action) == 2 &&
        (strcmp(action, "drain") == 0 || strcmp(action, "undrain") == 0)) {
        if (cmd != EVHTTP_REQ_POST) {
            error_json(req, 405, "Method Not Allowed", "use POST");
            return;
        }
        const char *want = a->api_key;
        const char *got = evhttp_find_header(evhttp_request_get_input_headers(req), "X-API-Key");
        if (!want[0]) {
            error_json(req, 403, "Forbidden", "the drain API is disabled (no api_key configured)");
            return;
        }
        if (!got || strlen(got) != strlen(want) || CRYPTO_memcmp(got, want, strlen(want)) != 0) {
            error_json(req, 401, "Unauthorized", "missing or wrong X-API-Key");
            return;
        }
        char err[256];
        bool drain = strcmp(action, "drain") == 0;
        if (hc_drain_set(a, region, drain, err, sizeof err) != 0) {
            bool unknown = strstr(err, "unknown region") != NULL;
            error_json(req, unknown ? 404 : 503, unknown ? "Not Found" : "Service Unavailable",
                       err);
            return;
        }
        mr_buf body = MR_BUF_INIT;
        mr_buf_puts(&body, "{\"region\":");
        mr_buf_json_str(&body, region, strlen(region));
        mr_buf_printf(&body, ",\"drained\":%s}\n", drain ? "true" : "false");
        reply_json(req, 200, "OK", &body);
        mr_buf_free(&body);
        return;
    }
    error_json(req, 404, "Not Found", "no such resource");
}

void hc_status_attach(struct evhttp *http, hc_agent *a)
{
    /* Ours first: mr_admin_attach's own /metrics registration then fails
     * quietly and ours, which adds per-endpoint gauges, stays. */
    evhttp_set_cb(http, "/metrics", on_metrics, a);
    evhttp_set_cb(http, "/v1/status", on_status, a);
    mr_admin_attach(http, ready_cb, a);
    evhttp_set_gencb(http, on_other, a);
}
