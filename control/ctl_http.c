/*
 * HTTP API. Everything about a request that needs no database or NATS round
 * trip (routing, authentication, parsing, validation) happens on the loop
 * thread; the blocking part runs as a job on a worker pool and its result
 * is handed back to the loop with event_base_once() (libevent is set up
 * for threads by main), where the reply is sent.
 *
 * A client may go away while its job runs: evhttp then frees the request,
 * so the job registers a close callback on the connection that forgets the
 * request, and the loop-side completion only replies when it is still
 * there.
 *
 * Every error is a JSON body {"error":{"code":...,"message":...}} with a
 * 4xx status for bad requests; 5xx is reserved for a database or NATS that
 * is unavailable.
 */
#include "ctl_http.h"
#include "ctl_history.h"
#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_config.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_proto.h"
#include "mr_time.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* evhttp's own cap: bigger bodies are refused before our handler runs. */
#define HTTP_HARD_MAX_BODY (1 << 20)
#define HTTP_TIMEOUT_S     30
#define PUBLISH_WAIT_MS    5000
#define FROM_MAX           128

static mr_metric m_req_2xx =
    MR_COUNTER_L("meridian_control_http_requests_total", "HTTP API requests", "class=\"2xx\"");
static mr_metric m_req_4xx =
    MR_COUNTER_L("meridian_control_http_requests_total", "HTTP API requests", "class=\"4xx\"");
static mr_metric m_req_5xx =
    MR_COUNTER_L("meridian_control_http_requests_total", "HTTP API requests", "class=\"5xx\"");
static mr_metric m_published =
    MR_COUNTER("meridian_control_api_published_total", "Messages published through the HTTP API");

void ctl_http_metrics_register(void)
{
    mr_metric_register(&m_req_2xx);
    mr_metric_register(&m_req_4xx);
    mr_metric_register(&m_req_5xx);
    mr_metric_register(&m_published);
}

struct ctl_http {
    struct event_base *base;
    struct evhttp *http;
    const ctl_config *cfg;
    ctl_pool *db_pool, *pub_pool;
    natsConnection *nc;
    jsCtx *js;
    SSL_CTX *ssl;
    char hsts[64];
    unsigned char (*key_hashes)[32];
    size_t nkeys;
};

typedef enum { JOB_HISTORY, JOB_PUBLISH } job_kind;

typedef struct http_job {
    ctl_http *h;
    job_kind kind;
    struct evhttp_request *req; /* NULL once the client has gone */
    struct evhttp_connection *evcon;
    int status;
    mr_buf body;
    ctl_history_query q;
    char subject[200];
    char msg_id[MR_MSG_ID_LEN + 1];
    mr_buf payload;
} http_job;

static void sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static void send_json(ctl_http *h, struct evhttp_request *req, int status, const char *body,
                      size_t len)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", "application/json");
    evhttp_add_header(oh, "Cache-Control", "no-store");
    if (h->ssl)
        evhttp_add_header(oh, "Strict-Transport-Security", h->hsts);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evbuffer_add(b, "\n", 1);
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
    mr_metric_inc(status < 300 ? &m_req_2xx : status < 500 ? &m_req_4xx : &m_req_5xx);
}

static void send_error(ctl_http *h, struct evhttp_request *req, int status, const char *code,
                       const char *message)
{
    mr_buf b = MR_BUF_INIT;
    ctl_history_error_json(&b, code, message);
    send_json(h, req, status, b.data, b.len);
    mr_buf_free(&b);
}

/*
 * Compare the presented key's hash with every configured key's hash in
 * constant time, so neither the key nor which key matched leaks through
 * timing.
 */
static bool authorised(ctl_http *h, struct evhttp_request *req)
{
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return false;
    const char *key = a + 7;
    while (*key == ' ')
        key++;
    unsigned char hash[32];
    sha256(key, strlen(key), hash);
    int ok = 0;
    for (size_t i = 0; i < h->nkeys; i++)
        ok |= CRYPTO_memcmp(hash, h->key_hashes[i], 32) == 0;
    return ok != 0;
}

/* ---- job completion (loop thread) ---- */

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    http_job *j = arg;
    j->req = NULL;
    j->evcon = NULL;
}

static void job_free(http_job *j)
{
    mr_buf_free(&j->body);
    mr_buf_free(&j->payload);
    free(j);
}

static void job_finish(evutil_socket_t fd, short what, void *arg)
{
    http_job *j = arg;
    if (j->req) {
        evhttp_connection_set_closecb(j->evcon, NULL, NULL);
        send_json(j->h, j->req, j->status, j->body.data ? j->body.data : "{}", j->body.len);
    }
    job_free(j);
}

/* Called on a worker when the job's result is ready. */
static void job_done(http_job *j)
{
    static const struct timeval now = {0, 0};
    if (event_base_once(j->h->base, -1, EV_TIMEOUT, job_finish, j, &now) != 0) {
        mr_log_error("http: cannot hand a reply back to the loop");
        abort();
    }
}

static ctl_job_result run_history(void *arg, PGconn *db, bool may_retry)
{
    http_job *j = arg;
    char err[256];
    ctl_history_status s = ctl_history_run(db, &j->q, &j->body, err, sizeof err);
    if (s == CTL_HIST_UNAVAILABLE && db && may_retry)
        return CTL_JOB_RETRY; /* the session died; the pool reconnects and runs this again */
    if (s == CTL_HIST_OK) {
        j->status = 200;
    } else {
        /* The detail is in the log (ctl_history_run); clients get fixed text. */
        mr_buf_reset(&j->body);
        ctl_history_error_json(&j->body, ctl_history_status_code(s), ctl_history_status_message(s));
        j->status = s == CTL_HIST_BAD_REQUEST ? 400 : s == CTL_HIST_UNAVAILABLE ? 503 : 500;
    }
    job_done(j);
    return CTL_JOB_DONE;
}

static ctl_job_result run_publish(void *arg, PGconn *db, bool may_retry)
{
    http_job *j = arg;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = j->msg_id;
    po.MaxWait = PUBLISH_WAIT_MS;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_Publish(&pa, j->h->js, j->subject, j->payload.data, (int)j->payload.len, &po, &jerr);
    if (s == NATS_OK) {
        j->status = 202;
        mr_buf_printf(&j->body, "{\"msg_id\":\"%s\",\"duplicate\":%s}", j->msg_id,
                      pa && pa->Duplicate ? "true" : "false");
        mr_metric_inc(&m_published);
    } else {
        /* The detail is for the log; the client learns only that it may retry. */
        mr_log_warn("http: publish on %s failed: %s (jetstream error %d)", j->subject,
                    natsStatus_GetText(s), (int)jerr);
        ctl_history_error_json(&j->body, "unavailable", "publish failed; retry later");
        j->status = 503;
    }
    if (pa)
        jsPubAck_Destroy(pa);
    job_done(j);
    return CTL_JOB_DONE;
}

static void submit(ctl_http *h, struct evhttp_request *req, http_job *j)
{
    j->h = h;
    j->req = req;
    j->evcon = evhttp_request_get_connection(req);
    ctl_pool *pool = j->kind == JOB_HISTORY ? h->db_pool : h->pub_pool;
    evhttp_connection_set_closecb(j->evcon, on_conn_close, j);
    if (ctl_pool_submit(pool, j->kind == JOB_HISTORY ? run_history : run_publish, j) != 0) {
        evhttp_connection_set_closecb(j->evcon, NULL, NULL);
        send_error(h, req, 503, "unavailable", "server busy; retry later");
        job_free(j);
    }
}

/* ---- parsing (loop thread) ---- */

/* A strict decimal: digits only, no sign, no leading '+', at most 18 digits. */
static int parse_u63(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static void handle_get(ctl_http *h, struct evhttp_request *req, const char *room, const char *query)
{
    http_job *j = mr_calloc(1, sizeof *j);
    j->kind = JOB_HISTORY;
    snprintf(j->q.room, sizeof j->q.room, "%s", room);
    j->q.limit = CTL_HISTORY_LIMIT_DEFAULT;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    char msg[160] = "";
    if (query && evhttp_parse_query_str(query, &kv) != 0) {
        snprintf(msg, sizeof msg, "malformed query string");
        goto bad;
    }
    bool seen_after = false, seen_before = false, seen_limit = false;
    struct evkeyval *e;
    TAILQ_FOREACH(e, &kv, next)
    {
        int64_t v;
        bool *seen;
        if (strcmp(e->key, "after") == 0)
            seen = &seen_after;
        else if (strcmp(e->key, "before") == 0)
            seen = &seen_before;
        else if (strcmp(e->key, "limit") == 0)
            seen = &seen_limit;
        else {
            snprintf(msg, sizeof msg, "unknown parameter \"%.40s\"", e->key);
            goto bad;
        }
        if (*seen) {
            snprintf(msg, sizeof msg, "parameter \"%s\" given twice", e->key);
            goto bad;
        }
        *seen = true;
        if (parse_u63(e->value, &v) != 0) {
            snprintf(msg, sizeof msg, "\"%s\" must be a non-negative integer", e->key);
            goto bad;
        }
        if (seen == &seen_after)
            j->q.after = v;
        else if (seen == &seen_before) {
            if (v < 1) {
                snprintf(msg, sizeof msg, "\"before\" must be at least 1");
                goto bad;
            }
            j->q.before = v;
        } else {
            if (v < 1 || v > CTL_HISTORY_LIMIT_MAX) {
                snprintf(msg, sizeof msg, "\"limit\" must be between 1 and %d",
                         CTL_HISTORY_LIMIT_MAX);
                goto bad;
            }
            j->q.limit = (int)v;
        }
    }
    evhttp_clear_headers(&kv);
    submit(h, req, j);
    return;
bad:
    evhttp_clear_headers(&kv);
    send_error(h, req, 400, "bad_request", msg);
    job_free(j);
}

/*
 * The identity of a message published through the API. A relay names a
 * user's message by SHA-256 of "room NUL sub NUL mid" (mr_msg_id); none of
 * the three can hold a NUL byte (room names are [A-Za-z0-9_-], JSON strings
 * with \u0000 are refused, mids are printable ASCII), so every relay input
 * has exactly two NULs. API messages hash "room NUL api NUL from NUL mid",
 * with three, and no API publish can ever get the msg_id of a user's
 * message, whatever `from` it names: before, a backend posting
 * {"from":"alice","mid":"m1"} made alice's own later publish with mid m1 a
 * "duplicate" that nobody saw. `from` and `mid` have no NUL either (checked
 * by the caller). The first 16 bytes in hex, like mr_msg_id.
 */
static void api_msg_id(const char *room, const char *from, const char *mid,
                       char out[MR_MSG_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    mr_buf in = MR_BUF_INIT;
    mr_buf_puts(&in, room);
    mr_buf_append(&in, "\0api\0", 5);
    mr_buf_puts(&in, from);
    mr_buf_putc(&in, '\0');
    mr_buf_puts(&in, mid);
    unsigned char md[32];
    sha256(in.data, in.len, md);
    mr_buf_free(&in);
    for (int i = 0; i < MR_MSG_ID_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[MR_MSG_ID_LEN] = '\0';
}

static void handle_post(ctl_http *h, struct evhttp_request *req, const char *room)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if ((int64_t)len > h->cfg->http_max_body) {
        char msg[96];
        snprintf(msg, sizeof msg, "body larger than %lld bytes", (long long)h->cfg->http_max_body);
        send_error(h, req, 413, "too_large", msg);
        return;
    }
    json_error_t jerr;
    json_t *o = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
    const char *why = NULL;
    json_t *from = NULL, *mid = NULL, *data = NULL;
    if (!o || !json_is_object(o)) {
        why = "body must be a JSON object";
        goto bad;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "from") != 0 && strcmp(key, "mid") != 0 && strcmp(key, "data") != 0) {
            why = "unknown member (allowed: from, mid, data)";
            goto bad;
        }
    }
    from = json_object_get(o, "from");
    mid = json_object_get(o, "mid");
    data = json_object_get(o, "data");
    if (!json_is_string(from) || json_string_length(from) == 0 ||
        json_string_length(from) > FROM_MAX ||
        strlen(json_string_value(from)) != json_string_length(from)) {
        why = "\"from\" must be a string of 1..128 bytes";
        goto bad;
    }
    if (!json_is_string(mid) || json_string_length(mid) == 0 ||
        json_string_length(mid) > MR_MID_MAX ||
        strlen(json_string_value(mid)) != json_string_length(mid)) {
        why = "\"mid\" must be a string of 1..64 bytes";
        goto bad;
    }
    if (!data) {
        why = "\"data\" is required";
        goto bad;
    }
    http_job *j = mr_calloc(1, sizeof *j);
    j->kind = JOB_PUBLISH;
    size_t room_len = strlen(room);
    api_msg_id(room, json_string_value(from), json_string_value(mid), j->msg_id);
    mr_envelope env = {.room = room,
                       .room_len = room_len,
                       .msg_id = j->msg_id,
                       .from = json_string_value(from),
                       .mid = json_string_value(mid),
                       .mid_len = json_string_length(mid),
                       .region = h->cfg->region,
                       .node = h->cfg->node,
                       .ts_ms = mr_wall_ms(),
                       .data = data};
    mr_proto_message(&j->payload, &env);
    snprintf(j->subject, sizeof j->subject, "meridian.msg.%s.%s", h->cfg->region, room);
    json_decref(o);
    submit(h, req, j);
    return;
bad:
    json_decref(o);
    send_error(h, req, 400, "bad_request", why);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    ctl_http *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || strncmp(path, "/v1/", 4) != 0) {
        send_error(h, req, 404, "not_found", "no such resource");
        return;
    }
    if (!authorised(h, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"meridian\"");
        send_error(h, req, 401, "unauthorized", "a valid API key is required (Bearer)");
        return;
    }
    /* /v1/rooms/{room}/messages */
    const char *prefix = "/v1/rooms/", *suffix = "/messages";
    size_t plen = strlen(path), pre = strlen(prefix), suf = strlen(suffix);
    if (plen <= pre + suf || strncmp(path, prefix, pre) != 0 ||
        strcmp(path + plen - suf, suffix) != 0) {
        send_error(h, req, 404, "not_found", "no such resource");
        return;
    }
    size_t room_len = plen - pre - suf;
    if (!mr_room_valid(path + pre, room_len)) {
        send_error(h, req, 400, "bad_request", "invalid room name (1..128 of [A-Za-z0-9_-])");
        return;
    }
    char room[MR_ROOM_MAX + 1];
    memcpy(room, path + pre, room_len);
    room[room_len] = '\0';
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_GET)
        handle_get(h, req, room, evhttp_uri_get_query(uri));
    else if (cmd == EVHTTP_REQ_POST)
        handle_post(h, req, room);
    else {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST");
        send_error(h, req, 405, "method_not_allowed", "use GET or POST");
    }
}

/* ---- TLS ---- */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    ctl_http *h = arg;
    SSL *ssl = SSL_new(h->ssl);
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *tls_ctx(const ctl_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        goto fail;
    /* TLS 1.3 only: every client this API serves (backends, curl) speaks it. */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    return ctx;
fail:;
    char e[256];
    ERR_error_string_n(ERR_get_error(), e, sizeof e);
    snprintf(err, errlen, "tls (cert %s, key %s): %s", cfg->tls_cert, cfg->tls_key, e);
    SSL_CTX_free(ctx);
    return NULL;
}

/* Hashes of the API keys: a request's key is hashed and compared with these. */
static void set_keys(ctl_http *h, const ctl_config *cfg)
{
    free(h->key_hashes);
    h->nkeys = cfg->napi_keys;
    h->key_hashes = mr_calloc(h->nkeys ? h->nkeys : 1, sizeof *h->key_hashes);
    for (size_t i = 0; i < h->nkeys; i++)
        sha256(cfg->api_keys[i], strlen(cfg->api_keys[i]), h->key_hashes[i]);
}

int ctl_http_reload(ctl_http *h, const ctl_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ssl = NULL;
    if (h->ssl && cfg->tls_cert) {
        ssl = tls_ctx(cfg, err, errlen);
        if (!ssl)
            return -1;
    }
    set_keys(h, cfg);
    if (ssl) {
        /* Each SSL holds a reference to its context: open connections keep the old one. */
        SSL_CTX_free(h->ssl);
        h->ssl = ssl;
    }
    return 0;
}

ctl_http *ctl_http_start(struct event_base *base, const ctl_config *cfg, ctl_pool *db_pool,
                         ctl_pool *pub_pool, natsConnection *nc, char *err, size_t errlen)
{
    ctl_http *h = mr_calloc(1, sizeof *h);
    h->base = base;
    h->cfg = cfg;
    h->db_pool = db_pool;
    h->pub_pool = pub_pool;
    h->nc = nc;
    if (natsConnection_JetStream(&h->js, nc, NULL) != NATS_OK) {
        snprintf(err, errlen, "cannot create a JetStream context");
        goto fail;
    }
    set_keys(h, cfg);
    if (cfg->tls_cert) {
        h->ssl = tls_ctx(cfg, err, errlen);
        if (!h->ssl)
            goto fail;
        snprintf(h->hsts, sizeof h->hsts, "max-age=%lld", (long long)cfg->hsts_max_age);
    }
    h->http = evhttp_new(base);
    if (h->ssl)
        evhttp_set_bevcb(h->http, tls_bev, h);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_max_body_size(h->http, HTTP_HARD_MAX_BODY);
    evhttp_set_max_headers_size(h->http, 16384);
    evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
    evhttp_set_gencb(h->http, on_request, h);
    char host[256];
    int port;
    if (mr_parse_hostport(cfg->http_listen, host, sizeof host, &port) != 0 ||
        !evhttp_bind_socket_with_handle(h->http, host[0] ? host : "0.0.0.0", (uint16_t)port)) {
        snprintf(err, errlen, "http_listen %s: cannot bind", cfg->http_listen);
        goto fail;
    }
    mr_log_info("HTTP API on %s%s", cfg->http_listen, h->ssl ? " (TLS 1.3)" : "");
    return h;
fail:
    ctl_http_stop(h);
    return NULL;
}

void ctl_http_stop(ctl_http *h)
{
    if (!h)
        return;
    if (h->http)
        evhttp_free(h->http);
    if (h->ssl)
        SSL_CTX_free(h->ssl);
    if (h->js)
        jsCtx_Destroy(h->js);
    free(h->key_hashes);
    free(h);
}
