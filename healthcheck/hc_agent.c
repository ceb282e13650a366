/*
 * The health agent's life cycle.
 *
 * Everything runs on one libevent loop except NATS (see hc_cluster.c):
 *
 *   probe timer  every probe.interval_ms: a probe round on every idle
 *                endpoint (hc_round.c).
 *   tick timer   every 100 ms: views out, quorum, DNS plan (hc_tick.c), then
 *                the writer (hc_writer.c) and the drain notifier (hc_drain.c).
 *
 * This file builds the agent from its configuration (hc_config.c), starts
 * the timers, the HTTP server and the cluster plane, and stops and frees
 * them. The HTTP routes are attached by the caller (hc_status.c, from
 * hc_main.c), so the agent never calls up into its HTTP face.
 */
#include "hc_agent.h"
#include "hc_agent_internal.h"
#include "hc_config.h"
#include "hc_http.h"
#include "hc_round.h"
#include "hc_tick.h"
#include "hc_verify.h"
#include "hc_writer.h"
#include "mr_alloc.h"
#include "mr_check.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

hc_agent *hc_agent_new(struct event_base *base, const char *config_path,
                       const char *listen_override, char *err, size_t errlen)
{
    hc_agent *a = mr_calloc(1, sizeof *a);
    a->base = base;
    pthread_mutex_init(&a->mu, NULL);
    if (hc_config_load(a, config_path, listen_override, err, errlen) != 0)
        goto err;
    mr_cfg dc = {.file = config_path};
    a->provider = hc_dns_new(base, a->regions, &dc, a->dns_conf);
    if (!a->provider) {
        snprintf(err, errlen, "%s", dc.err);
        goto err;
    }
    /* Without compare-and-set at the provider, a write is safe only if it
     * ends while the lease still holds; the holder starts one only with at
     * least the write's time-out left, and right after a renewal it has
     * ttl - margin left at most, at worst renew_ms less. */
    int room = a->lease_ttl_ms - a->lease_margin_ms - a->lease_renew_ms - HC_WRITE_SLACK_MS;
    if (!a->provider->cas && a->provider->timeout_ms > room) {
        snprintf(err, errlen,
                 "%s: dns.timeout_ms (%d) must be at most lease.ttl_ms - lease.margin_ms - "
                 "lease.renew_ms - %d = %d ms: a write must end while the lease holds",
                 config_path, a->provider->timeout_ms, HC_WRITE_SLACK_MS, room);
        goto err;
    }
    size_t nrel = a->regions->n_relays_total;
    a->eps = mr_calloc(nrel ? nrel : 1, sizeof *a->eps);
    for (size_t r = 0; r < a->regions->n_regions; r++) {
        const mr_region *g = &a->regions->regions[r];
        for (size_t i = 0; i < g->n_relays; i++) {
            const mr_relay_ep *ep = &g->relays[i];
            size_t k = mr_regions_relay_index(a->regions, ep);
            hc_endpoint *e = &a->eps[k];
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
            for (int kk = 0; kk < HC_N_KINDS; kk++)
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
        hc_round_metrics_register();
        hc_tick_metrics_register();
        hc_writer_metrics_register();
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

    const char **names = mr_calloc(a->regions->n_regions, sizeof(char *));
    for (size_t r = 0; r < a->regions->n_regions; r++)
        names[r] = a->regions->regions[r].name;
    hc_cluster_conf cc = {.nats = &a->nats,
                          .agent_id = a->agent_id,
                          .lease_id = a->lease_id,
                          .members = (const char *const *)a->members,
                          .n_members = a->n_members,
                          .lease_ttl_ms = a->lease_ttl_ms,
                          .lease_renew_ms = a->lease_renew_ms,
                          .lease_margin_ms = a->lease_margin_ms,
                          .state_path = a->state_path,
                          .regions = names,
                          .n_regions = a->regions->n_regions};
    a->cluster = hc_cluster_start(&cc, hc_tick_on_observation, a, err, errlen);
    free(names);
    if (!a->cluster)
        return -1;

    a->probe_timer = event_new(a->base, -1, EV_PERSIST, hc_round_timer_cb, a);
    struct timeval pt = {a->interval_ms / 1000, (a->interval_ms % 1000) * 1000};
    event_add(a->probe_timer, &pt);
    a->started_us = mr_now_us();
    a->tick_timer = event_new(a->base, -1, EV_PERSIST, hc_tick_cb, a);
    struct timeval tt = {0, 100000};
    event_add(a->tick_timer, &tt);
    hc_round_timer_cb(-1, 0, a);
    mr_log_info("agent %s (region %s) on %s: %zu regions, %zu relays, DNS via %s", a->agent_id,
                a->region_name, a->listen, a->regions->n_regions, a->regions->n_relays_total,
                a->provider->ops->name);
    hc_events_add(&a->events, "start", "agent %s started", a->agent_id);
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
    hc_writer_cancel_verifications(a);
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

struct evhttp *hc_agent_http(hc_agent *a)
{
    return a->http;
}

void hc_agent_log_settings(const hc_agent *a, int *level, int *format)
{
    *level = a->log_level;
    *format = a->log_format;
}

bool hc_agent_ready(hc_agent *a)
{
    return a->http && a->cluster && hc_cluster_connected(a->cluster);
}

void hc_agent_take_reloadable(hc_agent *a, hc_agent *next)
{
    /* Both keys are read on the loop thread only (hc_status.c, hc_drain.c): a swap is enough. */
    char *t = a->api_key;
    a->api_key = next->api_key;
    next->api_key = t;
    t = a->relay_api_key;
    a->relay_api_key = next->relay_api_key;
    next->relay_api_key = t;
    a->log_level = next->log_level;
    /* The probe token is signed again on the next round (hc_round.c, refresh_token). */
    if (strcmp(a->probe_secret, next->probe_secret) != 0) {
        t = a->probe_secret;
        a->probe_secret = next->probe_secret;
        next->probe_secret = t;
        a->token_renew_us = 0;
    }
}

void hc_agent_check(hc_agent *a, mr_check *chk)
{
    mr_check_bindable(chk, "listen", a->listen);
    /* The probe token is HS256 with the relays' secret; the relays' --check wants 32 bytes. */
    if (strlen(a->probe_secret) < 32)
        mr_check_error(chk, "probe.secret",
                       "%zu bytes; it is the relays' token secret, which HS256 wants at least 32 "
                       "bytes long",
                       strlen(a->probe_secret));
    mr_check_note(chk, "nats",
                  "not checked offline: whether NATS and the DNS provider are reachable and "
                  "accept the credentials");
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
    for (size_t i = 0; i < a->n_members; i++)
        free(a->members[i]);
    free(a->members);
    free(a->lease_id);
    free(a->state_path);
    mr_nats_conf_free(&a->nats);
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
