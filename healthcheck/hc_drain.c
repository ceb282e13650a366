/*
 * Drain flags and the calls to the relays' admin API that carry them out.
 */
#include "hc_drain.h"
#include "hc_agent_internal.h"
#include "hc_http.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            hc_events_add(&a->events, "drain", "relay %s is back in service", d->relay);
        else
            hc_events_add(&a->events, "drain", "relay %s is moving its clients away", d->relay);
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
            hc_events_add(&a->events, "error", "relay %s refused the %s request: %s%s", d->relay,
                          what, why, d->tracked ? " (retrying every 2 s)" : "");
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
void hc_drain_step(hc_agent *a)
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
int hc_drain_set(hc_agent *a, const char *region, bool drained, char *err, size_t errlen)
{
    int r = mr_regions_find(a->regions, region);
    if (r < 0) {
        snprintf(err, errlen, "unknown region \"%s\"", region);
        return -1;
    }
    if (hc_cluster_set_drain(a->cluster, region, drained, err, errlen) != 0)
        return -1;
    a->drained[r] = drained;
    a->force_publish = true; /* the flag travels in our next observation: send it now */
    /* Undraining is safe in any order, so the agent that took the request
     * tells the relays at once (the writer does too): they return to
     * service, and DNS follows once their probes pass again. */
    if (!drained)
        relay_calls(a, (size_t)r, true, NULL, false);
    mr_log_info("region %s %s by operator request", region, drained ? "drained" : "undrained");
    hc_events_add(&a->events, "drain", "region %s %s by operator", region,
                  drained ? "drained" : "undrained");
    return 0;
}
