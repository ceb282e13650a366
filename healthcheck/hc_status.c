/*
 * HTTP routes of the agent. The dashboard is one self-contained HTML file
 * (dashboard.html, embedded at build time): it polls /v1/status once a
 * second and draws everything itself, so it works offline and needs no
 * framework. The drain API compares the key in constant time.
 */
#include "hc_status.h"
#include "hc_agent.h"
#include "mr_admin.h"
#include "mr_buf.h"
#include "mr_metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

extern const unsigned char hc_dashboard_html[];
extern const size_t hc_dashboard_html_len;

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
    hc_agent_status_json(arg, &body);
    mr_buf_putc(&body, '\n');
    reply_json(req, 200, "OK", &body);
    mr_buf_free(&body);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    mr_buf body = MR_BUF_INIT;
    mr_metrics_render(&body);
    hc_agent_metrics(arg, &body);
    reply(req, 200, "OK", "text/plain; version=0.0.4", body.data ? body.data : "", body.len);
    mr_buf_free(&body);
}

static bool ready_cb(void *ud, mr_buf *detail)
{
    return hc_agent_ready(ud, detail);
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
        const char *want = hc_agent_api_key(a);
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
        if (hc_agent_drain(a, region, drain, err, sizeof err) != 0) {
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
