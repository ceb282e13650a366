/*
 * Integration: the HTTP API of meridian-control against a real nats-server
 * and PostgreSQL. Authentication, every class of bad input (4xx with a JSON
 * error body, never 5xx, never a crash), publish-then-read through the same
 * path as relays, paging both ways, and TLS 1.3 only with HSTS.
 */
#include "ctl_test_util.h"
#include "mr_test.h"
#include "mr_test_pg.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static mr_test_nats nats;
static mr_test_pg pg;
static ctl_proc ctl;

typedef struct resp {
    int status;
    char *head; /* status line and headers */
    char *body;
} resp;

static void resp_free(resp *r)
{
    free(r->head);
    free(r->body);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %d", port);
    return fd;
}

/* Split a complete HTTP/1.0-style response read until EOF. */
static void parse_resp(char *raw, size_t len, resp *r)
{
    r->status = -1;
    if (sscanf(raw, "HTTP/%*d.%*d %d", &r->status) != 1)
        r->status = -1;
    char *sep = strstr(raw, "\r\n\r\n");
    r->head = strndup(raw, sep ? (size_t)(sep - raw) : len);
    r->body = strdup(sep ? sep + 4 : "");
}

/* Read until EOF or the deadline, through `rd` (plain or TLS). */
static char *read_until_eof(int fd, SSL *ssl, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    int64_t deadline = mr_test_now_ms() + 10000;
    for (;;) {
        if (n + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        if (!ssl || SSL_pending(ssl) == 0) {
            struct pollfd p = {fd, POLLIN, 0};
            int left = (int)(deadline - mr_test_now_ms());
            if (left <= 0 || poll(&p, 1, left) <= 0)
                break;
        }
        ssize_t got =
            ssl ? SSL_read(ssl, buf + n, (int)(cap - n - 1)) : read(fd, buf + n, cap - n - 1);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* One request with Connection: close. `auth` NULL sends no Authorization header. */
static resp request_on(int port, SSL_CTX *tls, const char *method, const char *path,
                       const char *auth, const char *body, size_t body_len)
{
    int fd = tcp_connect(port);
    SSL *ssl = NULL;
    if (tls) {
        ssl = SSL_new(tls);
        SSL_set_fd(ssl, fd);
        ck_assert_msg(SSL_connect(ssl) == 1, "TLS handshake failed");
    }
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, path, auth ? "Authorization: " : "", auth ? auth : "",
                      auth ? "\r\n" : "", body ? body_len : 0);
    size_t total = (size_t)hn + (body ? body_len : 0);
    char *out = malloc(total);
    memcpy(out, head, (size_t)hn);
    if (body)
        memcpy(out + hn, body, body_len);
    size_t off = 0;
    while (off < total) {
        ssize_t w =
            ssl ? SSL_write(ssl, out + off, (int)(total - off)) : write(fd, out + off, total - off);
        if (w <= 0)
            break; /* the server may refuse early (oversize); read what it said */
        off += (size_t)w;
    }
    free(out);
    size_t len;
    char *raw = read_until_eof(fd, ssl, &len);
    resp r;
    parse_resp(raw, len, &r);
    free(raw);
    if (ssl)
        SSL_free(ssl);
    close(fd);
    return r;
}

static const char *AUTH = "Bearer " CTL_TEST_KEY;

static resp request(const char *method, const char *path, const char *auth, const char *body)
{
    return request_on(ctl.http_port, NULL, method, path, auth, body, body ? strlen(body) : 0);
}

/* A 4xx of the expected status with a JSON error body naming `code`. */
static void assert_error(resp *r, int status, const char *code, const char *what)
{
    ck_assert_msg(r->status == status, "%s: status %d, want %d (%s)", what, r->status, status,
                  r->body);
    json_t *o = json_loads(r->body, 0, NULL);
    ck_assert_msg(o != NULL, "%s: error body is not JSON: %s", what, r->body);
    json_t *e = json_object_get(o, "error");
    ck_assert_msg(json_is_string(json_object_get(e, "code")), "%s: no error.code", what);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    ck_assert(json_is_string(json_object_get(e, "message")));
    json_decref(o);
}

static void setup(void)
{
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    /* The stream exists before control starts, as the region's relays create it. */
    natsConnection *nc = ctl_test_nats(nats.url);
    jsCtx *js = NULL;
    ck_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    ctl_test_stream(js, "eu-west", NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"batch\":{\"max_wait_ms\":10}");
}

static void teardown(void)
{
    if (ctl.pid > 0)
        ck_assert_int_eq(ctl_proc_stop(&ctl), 0);
    ctl_proc_free(&ctl);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

START_TEST(test_auth_required)
{
    ctl_proc_start(&ctl, NULL);
    resp r = request("GET", "/v1/rooms/lobby/messages", NULL, NULL);
    assert_error(&r, 401, "unauthorized", "no key");
    ck_assert(strstr(r.head, "WWW-Authenticate: Bearer") != NULL);
    resp_free(&r);
    r = request("GET", "/v1/rooms/lobby/messages", "Bearer wrong-key-0123456789", NULL);
    assert_error(&r, 401, "unauthorized", "wrong key");
    resp_free(&r);
    r = request("GET", "/v1/rooms/lobby/messages", "Basic dGVzdDp0ZXN0", NULL);
    assert_error(&r, 401, "unauthorized", "basic");
    resp_free(&r);
    r = request("POST", "/v1/rooms/lobby/messages", NULL,
                "{\"from\":\"x\",\"mid\":\"1\",\"data\":1}");
    assert_error(&r, 401, "unauthorized", "post without key");
    resp_free(&r);
    r = request("GET", "/v1/rooms/lobby/messages", AUTH, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(test_bad_input_gets_4xx)
{
    ctl_proc_start(&ctl, NULL);
    char longroom[300] = "/v1/rooms/";
    memset(longroom + 10, 'a', 129);
    strcpy(longroom + 139, "/messages");
    struct {
        const char *method, *path, *body;
        int status;
        const char *code;
    } cases[] = {
        {"GET", "/v1/rooms/bad.room/messages", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/%2e%2e/messages", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/a%20b/messages", NULL, 400, "bad_request"},
        {"GET", longroom, NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?after=-1", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?after=abc", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?after=1e3", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?after=99999999999999999999", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?after=", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?limit=0", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?limit=1001", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?before=0", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?after=1&after=2", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?sort=desc", NULL, 400, "bad_request"},
        {"GET", "/v1/rooms/lobby/messages?after=%00", NULL, 400, "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "{not json", 400, "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "", 400, "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "[1,2,3]", 400, "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "{\"mid\":\"1\",\"data\":1}", 400, "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "{\"from\":\"\",\"mid\":\"1\",\"data\":1}", 400,
         "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "{\"from\":\"b\",\"mid\":1,\"data\":1}", 400,
         "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "{\"from\":\"b\",\"mid\":\"1\"}", 400, "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "{\"from\":\"b\",\"mid\":\"1\",\"data\":1,\"x\":2}",
         400, "bad_request"},
        {"POST", "/v1/rooms/lobby/messages", "{\"from\":\"b\\u0000c\",\"mid\":\"1\",\"data\":1}",
         400, "bad_request"},
        {"POST", "/v1/rooms/bad!room/messages", "{\"from\":\"b\",\"mid\":\"1\",\"data\":1}", 400,
         "bad_request"},
        {"GET", "/v1/rooms/lobby", NULL, 404, "not_found"},
        {"GET", "/v1/nothing", NULL, 404, "not_found"},
        {"GET", "/v1/rooms//messages", NULL, 404, "not_found"},
        {"PUT", "/v1/rooms/lobby/messages", "{}", 405, "method_not_allowed"},
        {"DELETE", "/v1/rooms/lobby/messages", NULL, 405, "method_not_allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r = request(cases[i].method, cases[i].path, AUTH, cases[i].body);
        char what[400];
        snprintf(what, sizeof what, "%s %.60s %.60s", cases[i].method, cases[i].path,
                 cases[i].body ? cases[i].body : "");
        assert_error(&r, cases[i].status, cases[i].code, what);
        resp_free(&r);
    }
    /* mid longer than 64 bytes. */
    char body[512];
    snprintf(body, sizeof body, "{\"from\":\"b\",\"mid\":\"%070d\",\"data\":1}", 7);
    resp r = request("POST", "/v1/rooms/lobby/messages", AUTH, body);
    assert_error(&r, 400, "bad_request", "long mid");
    resp_free(&r);
    /* Oversize body: over http.max_body (64 KiB) gets a JSON 413. */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 64);
    int n = snprintf(huge, 64, "{\"from\":\"b\",\"mid\":\"1\",\"data\":\"");
    memset(huge + n, 'x', big);
    strcpy(huge + n + big, "\"}");
    r = request("POST", "/v1/rooms/lobby/messages", AUTH, huge);
    assert_error(&r, 413, "too_large", "oversize body");
    resp_free(&r);
    free(huge);
    /* Far beyond the hard cap evhttp refuses by itself: still a 4xx, never a crash. */
    big = 3 * 1024 * 1024;
    huge = malloc(big);
    memset(huge, 'x', big);
    r = request_on(ctl.http_port, NULL, "POST", "/v1/rooms/lobby/messages", AUTH, huge, big);
    ck_assert_msg(r.status == 413 || r.status == -1, "huge body: status %d", r.status);
    resp_free(&r);
    free(huge);
    /* Garbage that is not HTTP at all. */
    int fd = tcp_connect(ctl.http_port);
    const char junk[] = "\x16\x03\x01\x02\x00garbage\r\n\r\n";
    ck_assert(write(fd, junk, sizeof junk - 1) > 0);
    size_t len;
    free(read_until_eof(fd, NULL, &len));
    close(fd);
    /* Clients that vanish while their request is being answered (history and publish). */
    for (int i = 0; i < 40; i++) {
        int cfd = tcp_connect(ctl.http_port);
        char req[512], pbody[96];
        int bn = snprintf(pbody, sizeof pbody, "{\"from\":\"x\",\"mid\":\"%04d\",\"data\":1}", i);
        int rn = i % 2 ? snprintf(req, sizeof req,
                                  "GET /v1/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: %s\r\n\r\n",
                                  AUTH)
                       : snprintf(req, sizeof req,
                                  "POST /v1/rooms/gone/messages HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: %s\r\nContent-Length: %d\r\n\r\n%s",
                                  AUTH, bn, pbody);
        ck_assert(write(cfd, req, (size_t)rn) == rn);
        close(cfd);
    }
    /* Still alive and serving. */
    r = request("GET", "/v1/rooms/lobby/messages?after=0&limit=1000", AUTH, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    char *hb = NULL;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", ctl.admin_port, "/healthz", &hb), 200);
    free(hb);
}
END_TEST

static json_t *get_json(const char *path)
{
    resp r = request("GET", path, AUTH, NULL);
    ck_assert_msg(r.status == 200, "GET %s: %d %s", path, r.status, r.body);
    ck_assert(strstr(r.head, "Content-Type: application/json") != NULL);
    json_t *o = json_loads(r.body, 0, NULL);
    ck_assert(o != NULL);
    resp_free(&r);
    return o;
}

START_TEST(test_post_then_history)
{
    ctl_proc_start(&ctl, NULL);
    char first_id[64] = "";
    for (int i = 0; i < 5; i++) {
        char body[256];
        snprintf(
            body, sizeof body,
            "{\"from\":\"billing\",\"mid\":\"inv-%d\",\"data\":{\"amount\":%d,\"s\":\"\\u00e9\"}}",
            i, i * 10);
        resp r = request("POST", "/v1/rooms/acct-42/messages", AUTH, body);
        ck_assert_msg(r.status == 202, "POST: %d %s", r.status, r.body);
        json_t *o = json_loads(r.body, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "msg_id"));
        ck_assert(id && strlen(id) == 32);
        if (i == 0)
            snprintf(first_id, sizeof first_id, "%s", id);
        json_decref(o);
        resp_free(&r);
    }
    /* A retried POST (same from + mid) gets the same msg_id and is stored once. */
    resp r = request("POST", "/v1/rooms/acct-42/messages", AUTH,
                     "{\"from\":\"billing\",\"mid\":\"inv-0\",\"data\":{\"amount\":0}}");
    ck_assert_int_eq(r.status, 202);
    json_t *o = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg_id")), first_id);
    json_decref(o);
    resp_free(&r);

    int64_t deadline = mr_test_now_ms() + 30000;
    json_t *page = NULL;
    for (;;) {
        page = get_json("/v1/rooms/acct-42/messages?after=0");
        if (json_integer_value(json_object_get(page, "last_seq")) == 5 ||
            mr_test_now_ms() > deadline)
            break;
        json_decref(page);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    json_t *msgs = json_object_get(page, "messages");
    ck_assert_msg(json_array_size(msgs) == 5,
                  "history has %zu of 5 messages (last_seq %lld); see %s", json_array_size(msgs),
                  (long long)json_integer_value(json_object_get(page, "last_seq")), ctl.log);
    for (size_t i = 0; i < 5; i++) {
        json_t *m = json_array_get(msgs, i);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")), (json_int_t)i + 1);
        char mid[16];
        snprintf(mid, sizeof mid, "inv-%zu", i);
        ck_assert_str_eq(json_string_value(json_object_get(m, "mid")), mid);
        ck_assert_str_eq(json_string_value(json_object_get(m, "from")), "billing");
        ck_assert_str_eq(json_string_value(json_object_get(m, "region")), "eu-west");
        ck_assert_str_eq(json_string_value(json_object_get(m, "room")), "acct-42");
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m, "data"), "amount")),
                         (json_int_t)i * 10);
    }
    ck_assert(json_is_false(json_object_get(page, "more")));
    json_decref(page);
    /* Paging backwards: before=4, limit=2 gives seqs 2 and 3, with more below. */
    page = get_json("/v1/rooms/acct-42/messages?before=4&limit=2");
    msgs = json_object_get(page, "messages");
    ck_assert_int_eq(json_array_size(msgs), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(msgs, 0), "seq")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(msgs, 1), "seq")), 3);
    ck_assert(json_is_true(json_object_get(page, "more")));
    json_decref(page);
    page = get_json("/v1/rooms/acct-42/messages?after=2&limit=2");
    msgs = json_object_get(page, "messages");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(msgs, 0), "seq")), 3);
    ck_assert(json_is_true(json_object_get(page, "more")));
    json_decref(page);
    ck_assert_int_eq(ctl_test_check_history(&pg), 5);
}
END_TEST

static void expect_pipelined_on(int port, SSL_CTX *tls, const char *text, int want, int status,
                                const char *what);

START_TEST(test_tls13_only_with_hsts)
{
    char cert[700], key[700], log[700];
    snprintf(cert, sizeof cert, "%s/cert.pem", ctl.dir);
    snprintf(key, sizeof key, "%s/key.pem", ctl.dir);
    snprintf(log, sizeof log, "%s/openssl.log", ctl.dir);
    char *argv[] = {"openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    key,
                    "-out",
                    cert,
                    "-days",
                    "2",
                    "-subj",
                    "/CN=127.0.0.1",
                    NULL};
    pid_t pid = mr_test_spawn(argv, log);
    int st = mr_test_wait_exit(pid, 30000);
    ck_assert_msg(st == 0, "openssl req failed; see %s", log);
    char extra[2000];
    snprintf(extra, sizeof extra,
             "\"batch\":{\"max_wait_ms\":10},\"tls\":{\"cert\":\"%s\",\"key\":\"%s\","
             "\"hsts_max_age\":600}",
             cert, key);
    /* The first directory keeps the certificate; it is removed at the end. */
    ctl_proc first = {.dir = ctl.dir};
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_start(&ctl, NULL);

    SSL_CTX *c13 = SSL_CTX_new(TLS_client_method());
    resp r = request_on(ctl.http_port, c13, "GET", "/v1/rooms/lobby/messages", AUTH, NULL, 0);
    ck_assert_msg(r.status == 200, "TLS GET: %d", r.status);
    ck_assert_msg(strstr(r.head, "Strict-Transport-Security: max-age=600") != NULL, "no HSTS: %s",
                  r.head);
    resp_free(&r);
    r = request_on(ctl.http_port, c13, "GET", "/v1/rooms/lobby/messages", NULL, NULL, 0);
    assert_error(&r, 401, "unauthorized", "TLS without key");
    resp_free(&r);
    char two[1024];
    snprintf(two, sizeof two,
             "GET /v1/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
             "GET /v1/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n",
             AUTH, AUTH);
    expect_pipelined_on(ctl.http_port, c13, two, 2, 200, "TLS API");
    SSL_CTX_free(c13);

    /* A client limited to TLS 1.2 must be refused during the handshake. */
    SSL_CTX *c12 = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(c12, TLS1_2_VERSION);
    int fd = tcp_connect(ctl.http_port);
    SSL *ssl = SSL_new(c12);
    SSL_set_fd(ssl, fd);
    ck_assert_msg(SSL_connect(ssl) != 1, "TLS 1.2 handshake was accepted");
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(c12);
    ERR_clear_error();

    /* Plain HTTP on the TLS port gets nowhere, and the server survives it. */
    fd = tcp_connect(ctl.http_port);
    const char plain[] = "GET /v1/rooms/lobby/messages HTTP/1.0\r\n\r\n";
    ck_assert(write(fd, plain, sizeof plain - 1) > 0);
    size_t len;
    char *raw = read_until_eof(fd, NULL, &len);
    ck_assert(strstr(raw, "HTTP/1.") == NULL || strstr(raw, " 200 ") == NULL);
    free(raw);
    close(fd);
    char *hb = NULL;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", ctl.admin_port, "/healthz", &hb), 200);
    free(hb);
    ck_assert_int_eq(ctl_proc_stop(&ctl), 0);
    ctl_proc_free(&first);
}
END_TEST

/* Send `text` in one write and expect `want` responses with `status` each. */
static void expect_pipelined_on(int port, SSL_CTX *tls, const char *text, int want, int status,
                                const char *what)
{
    int st[8];
    int got = mr_test_http_pipelined(port, tls, text, want, st, 5000);
    ck_assert_msg(got == want, "%s: %d of %d pipelined requests answered", what, got, want);
    for (int i = 0; i < got; i++)
        ck_assert_msg(st[i] == status, "%s: response %d has status %d", what, i, st[i]);
}

static void expect_pipelined(int port, const char *text, int want, int status, const char *what)
{
    expect_pipelined_on(port, NULL, text, want, status, what);
}

/*
 * Two or three requests in one write (HTTP/1.1 pipelining) get every answer,
 * in order, without the client sending anything more: on the API (history
 * answered from a worker thread, and errors answered at once) and on the
 * admin port.
 */
START_TEST(test_pipelined_requests_all_answered)
{
    ctl_proc_start(&ctl, NULL);
    char text[2048];
    snprintf(text, sizeof text,
             "GET /v1/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
             "GET /v1/rooms/lobby/messages?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: "
             "%s\r\n\r\n",
             AUTH, AUTH);
    expect_pipelined(ctl.http_port, text, 2, 200, "API history");
    snprintf(text, sizeof text,
             "GET /v1/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
             "GET /v1/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
             "GET /v1/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n",
             AUTH, AUTH, AUTH);
    expect_pipelined(ctl.http_port, text, 3, 404, "API errors");
    const char *pbody = "{\"from\":\"p\",\"mid\":\"pipe-1\",\"data\":1}";
    snprintf(text, sizeof text,
             "POST /v1/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
             "Content-Length: %zu\r\n\r\n%s"
             "POST /v1/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             AUTH, strlen(pbody), pbody, AUTH, strlen(pbody), pbody);
    expect_pipelined(ctl.http_port, text, 2, 202, "API publish");
    expect_pipelined(ctl.admin_port,
                     "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                     2, 200, "admin");
    /* A path without a route is answered without closing the connection. */
    expect_pipelined(ctl.admin_port,
                     "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
                     2, 404, "admin without a route");
}
END_TEST

START_TEST(test_config_errors_and_flags)
{
    /* --check reports a precise error for a bad key and succeeds on a good file. */
    char bad[700], out[700];
    snprintf(bad, sizeof bad, "%s/bad.json", ctl.dir);
    snprintf(out, sizeof out, "%s/check.log", ctl.dir);
    mr_test_write_file(bad, "{\"region\":\"eu-west\",\"postgres\":\"x\",\"api_keys\":[\"0123456789"
                            "abcdefgh\"],\"batch\":{\"max_messages\":0}}");
    char *argv[] = {CTL_BINARY, "--config", bad, "--check", NULL};
    int st = mr_test_wait_exit(mr_test_spawn(argv, out), 10000);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2); /* a configuration error (operations.md) */
    char *argv2[] = {CTL_BINARY, "--config", ctl.cfg, "--check", NULL};
    st = mr_test_wait_exit(mr_test_spawn(argv2, out), 10000);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *argv3[] = {CTL_BINARY, "--version", NULL};
    st = mr_test_wait_exit(mr_test_spawn(argv3, out), 10000);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *argv4[] = {CTL_BINARY, "--no-such-flag", NULL};
    st = mr_test_wait_exit(mr_test_spawn(argv4, out), 10000);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    FILE *f = fopen(out, "r");
    char text[8192] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    (void)fclose(f); /* opened to read only */
    ck_assert_msg(strstr(text, "batch.max_messages") != NULL, "no key in error: %s", text);
    ck_assert(strstr(text, "configuration OK") != NULL);
    ck_assert(strstr(text, "meridian-control 0.") != NULL);
}
END_TEST

int main(void)
{
    /* The server may close while a test still writes an oversize body. */
    (void)signal(SIGPIPE, SIG_IGN); /* cannot fail for SIGPIPE */
    Suite *s = suite_create("control_http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_auth_required);
    tcase_add_test(tc, test_bad_input_gets_4xx);
    tcase_add_test(tc, test_post_then_history);
    tcase_add_test(tc, test_config_errors_and_flags);
    suite_add_tcase(s, tc);
    TCase *pipe = mr_test_case(s, "pipelining", setup, teardown, 90);
    tcase_add_test(pipe, test_pipelined_requests_all_answered);
    TCase *tls = mr_test_case(s, "tls", setup, teardown, 90);
    tcase_add_test(tls, test_tls13_only_with_hsts);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
