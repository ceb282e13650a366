/*
 * Readiness probe: GET <admin_url>/readyz must answer 200. A relay that is
 * draining or has lost NATS answers 503 and is counted as failing, although
 * it still accepts connections.
 */
#include "hc_http.h"
#include "hc_probe.h"
#include "mr_alloc.h"
#include "mr_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct readyz {
    hc_probe_cb cb;
    void *ud;
    int64_t t0_us;
} readyz;

static void done(int status, const char *body, size_t len, const char *err, void *ud)
{
    readyz *r = ud;
    hc_probe_result res = {.cert_days_left = -1};
    res.latency_ms = (double)(mr_now_us() - r->t0_us) / 1000.0;
    res.ok = status == 200;
    if (status < 0)
        snprintf(res.err, sizeof res.err, "%s", err);
    else if (status != 200)
        snprintf(res.err, sizeof res.err, "/readyz answered %d", status);
    r->cb(&res, r->ud);
    free(r);
}

static int readyz_start(struct event_base *base, const hc_probe_target *t, int timeout_ms,
                        hc_probe_cb cb, void *ud, hc_probe_result *res)
{
    char url[512];
    size_t n = strlen(t->admin_url);
    snprintf(url, sizeof url, "%.*s/readyz", (int)(n && t->admin_url[n - 1] == '/' ? n - 1 : n),
             t->admin_url);
    readyz *r = mr_calloc(1, sizeof *r);
    r->cb = cb;
    r->ud = ud;
    r->t0_us = mr_now_us();
    if (hc_http_request(base, "GET", url, NULL, NULL, 0, timeout_ms, done, r, res->err,
                        sizeof res->err) != 0) {
        free(r);
        return -1;
    }
    return 0;
}

const hc_probe_kind hc_probe_readyz = {"readyz", readyz_start};
