/*
 * Drain.
 *
 * Two ways in. SIGTERM drains to exit: the relay refuses new upgrades,
 * asks every client to reconnect, closes the rest with 1012 after
 * `drain_grace_ms`, and exits once empty. POST /v1/drain on the admin port
 * (sent by the health agents when an operator drains the region) does the
 * same without exiting, optionally with the URLs clients should move to;
 * POST /v1/undrain takes the relay back into service.
 *
 * Reconnect frames go out `drain_batch` sessions per housekeeping tick
 * (RELAY_TICK_MS) rather than all at once, so a drained relay does not send
 * every client to the next region in the same instant.
 *
 * The admin thread only records the request in struct relay under
 * drain_lock and wakes the lws thread; everything else happens on the lws
 * thread.
 */
#include "relay_drain.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "relay_conn.h"
#include "relay_frames.h"
#include "relay_metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* After the 1012 closes of a drain that exits: time for the close handshakes, then stop. */
#define CLOSE_HANDSHAKE_WAIT_S 2

void relay_drain_init(relay *r)
{
    pthread_mutex_init(&r->drain_lock, NULL);
}

static void reply(struct evhttp_request *req, int code, const char *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, code, code < 300 ? "OK" : "Error", b);
    evbuffer_free(b);
}

/*
 * Drain and undrain change what every client of the relay is told, so they
 * need the admin key: without admin_api_key they are disabled (403), a
 * missing or wrong key gets 401. Reading (/healthz, /readyz, /metrics)
 * stays open for balancers and Prometheus.
 */
static bool authorised(struct evhttp_request *req, relay *r)
{
    /* A reload (relay_reload.c) may replace the key: compare under drain_lock. */
    pthread_mutex_lock(&r->drain_lock);
    const char *key = r->cfg->admin_api_key;
    bool disabled = !key, ok = false;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (key) {
        size_t kl = strlen(key);
        ok = h && strncmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == kl &&
             CRYPTO_memcmp(h + 7, key, kl) == 0;
    }
    pthread_mutex_unlock(&r->drain_lock);
    if (disabled) {
        reply(req, 403,
              "{\"error\":{\"code\":\"forbidden\",\"message\":\"drain and undrain are disabled: "
              "set admin_api_key\"}}\n");
        return false;
    }
    if (ok)
        return true;
    reply(req, 401,
          "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad or missing API key\"}}\n");
    return false;
}

static bool post_allowed(struct evhttp_request *req, relay *r)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply(req, 405, "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use POST\"}}\n");
        return false;
    }
    return authorised(req, r);
}

/*
 * The body of POST /v1/drain: empty, {} or {"urls":[...]} with at most
 * RELAY_DRAIN_URLS_MAX ws:// or wss:// URLs (relay_config_url_valid), which
 * clients will connect to. Returns the URL array (a new reference, or NULL
 * for none) in *urls, or false when the body is not that.
 */
static bool parse_drain_body(struct evhttp_request *req, json_t **urls)
{
    *urls = NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return true;
    char *body = mr_malloc(len);
    evbuffer_remove(in, body, len);
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    free(body);
    json_t *u = json_object_get(j, "urls");
    bool ok = json_is_object(j) && json_object_size(j) == (u ? 1u : 0u) &&
              (!u || (json_is_array(u) && json_array_size(u) <= RELAY_DRAIN_URLS_MAX));
    size_t i;
    json_t *e;
    if (ok && u)
        json_array_foreach(u, i, e) ok = ok && json_is_string(e) &&
                                         strlen(json_string_value(e)) == json_string_length(e) &&
                                         relay_config_url_valid(json_string_value(e));
    if (ok && u)
        *urls = json_incref(u);
    json_decref(j);
    return ok;
}

static void on_drain(struct evhttp_request *req, void *arg)
{
    relay *r = arg;
    if (!post_allowed(req, r))
        return;
    json_t *urls;
    if (!parse_drain_body(req, &urls)) {
        reply(req, 400,
              "{\"error\":{\"code\":\"bad_request\",\"message\":\"body must be empty or "
              "{\\\"urls\\\":[...]}: at most 16 ws:// or wss:// URLs of at most 512 bytes\"}}\n");
        return;
    }
    pthread_mutex_lock(&r->drain_lock);
    json_decref(r->drain_requested_urls);
    r->drain_requested_urls = urls;
    r->drain_requested = 1;
    pthread_mutex_unlock(&r->drain_lock);
    atomic_store(&r->draining, true);
    lws_cancel_service(r->lws);
    reply(req, 202, "{\"draining\":true}\n");
}

static void on_undrain(struct evhttp_request *req, void *arg)
{
    relay *r = arg;
    if (!post_allowed(req, r))
        return;
    /* A relay told to stop stays stopping; relay_drain_poll checks again on its thread. */
    if (atomic_load(&r->sigterm)) {
        reply(req, 409,
              "{\"error\":{\"code\":\"conflict\",\"message\":\"the relay is stopping (SIGTERM) "
              "and cannot be undrained\"}}\n");
        return;
    }
    pthread_mutex_lock(&r->drain_lock);
    json_decref(r->drain_requested_urls);
    r->drain_requested_urls = NULL;
    r->drain_requested = -1;
    pthread_mutex_unlock(&r->drain_lock);
    lws_cancel_service(r->lws);
    reply(req, 202, "{\"draining\":false}\n");
}

void relay_drain_admin_routes(struct evhttp *http, relay *r)
{
    /* evhttp matches callbacks on the path alone: a query string does not change the route. */
    evhttp_set_cb(http, "/v1/drain", on_drain, r);
    evhttp_set_cb(http, "/v1/undrain", on_undrain, r);
}

static void close_timer_cb(lws_sorted_usec_list_t *sul)
{
    relay *r = lws_container_of(sul, relay, drain_sul);
    if (!r->drain_started)
        return; /* undrained meanwhile */
    if (!r->closing_all) {
        mr_log_info("drain: grace period over; closing %zu sessions with 1012", r->conn_count);
        r->closing_all = true;
        for (relay_conn *c = r->conns; c; c = c->next)
            relay_conn_close(c, MR_CLOSE_RESTART, "relay draining");
        if (r->drain_exit)
            /* Give the close handshakes a moment, then stop regardless. */
            lws_sul_schedule(r->lws, 0, &r->drain_sul, close_timer_cb,
                             CLOSE_HANDSHAKE_WAIT_S * LWS_US_PER_SEC);
        return;
    }
    atomic_store(&r->stopping, true);
}

static void start(relay *r, bool exit_after)
{
    r->drain_started = true;
    r->drain_exit = exit_after;
    r->closing_all = false;
    mr_metric_set(&relay_m.draining, 1);
    mr_log_info("drain: asking %zu sessions to reconnect, %lld per %d ms; closing in %lld ms%s",
                r->conn_count, (long long)r->cfg->drain_batch, RELAY_TICK_MS,
                (long long)r->cfg->drain_grace_ms, exit_after ? ", then exiting" : "");
    for (relay_conn *c = r->conns; c; c = c->next)
        c->reconnect_sent = false;
    relay_drain_tick(r);
    lws_sul_schedule(r->lws, 0, &r->drain_sul, close_timer_cb,
                     (lws_usec_t)r->cfg->drain_grace_ms * 1000);
}

void relay_drain_poll(relay *r)
{
    pthread_mutex_lock(&r->drain_lock);
    int req = r->drain_requested;
    json_t *urls = r->drain_requested_urls;
    r->drain_requested = 0;
    r->drain_requested_urls = NULL;
    pthread_mutex_unlock(&r->drain_lock);
    bool sigterm = atomic_load(&r->sigterm);
    if (req == 1) {
        json_decref(r->drain_urls);
        r->drain_urls = urls;
        if (!r->drain_started)
            start(r, sigterm);
    } else if (req == -1 && sigterm) {
        /* SIGTERM came after the admin thread checked: stopping wins. */
        mr_log_info("drain: undrain refused; the relay is stopping");
    } else if (req == -1) {
        mr_log_info("drain: cancelled; accepting clients again");
        atomic_store(&r->draining, false);
        r->drain_started = false;
        r->closing_all = false;
        json_decref(r->drain_urls);
        r->drain_urls = NULL;
        mr_metric_set(&relay_m.draining, 0);
        lws_sul_cancel(&r->drain_sul);
        return;
    }
    /* SIGTERM: drain, then exit (also when an admin drain was already under way). */
    if (atomic_load(&r->draining) && !r->drain_started)
        start(r, true);
    else if (r->drain_started && !r->drain_exit && sigterm)
        r->drain_exit = true;
}

void relay_drain_tick(relay *r)
{
    if (!r->drain_started)
        return;
    mr_buf b = MR_BUF_INIT;
    relay_frame_reconnect(&b, r);
    relay_out *o = relay_out_new(b.data, b.len);
    mr_buf_free(&b);
    int64_t budget = r->cfg->drain_batch;
    for (relay_conn *c = r->conns; c && budget > 0; c = c->next) {
        if (c->reconnect_sent)
            continue;
        relay_conn_send(c, o);
        c->reconnect_sent = true;
        budget--;
    }
    relay_out_unref(o);
}

void relay_drain_free(relay *r)
{
    json_decref(r->drain_urls);
    r->drain_urls = NULL;
    pthread_mutex_lock(&r->drain_lock);
    json_decref(r->drain_requested_urls);
    r->drain_requested_urls = NULL;
    pthread_mutex_unlock(&r->drain_lock);
    pthread_mutex_destroy(&r->drain_lock);
}
