/* Relay processes and protocol steps for the integration suites. */
#include "mr_test_relay.h"
#include "mr_jwt.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

void mr_test_relay_config(mr_test_relay *rp, const char *dir, const char *region, const char *node,
                          const char *nats_url, const char *limits, const char *extra)
{
    rp->pid = 0;
    rp->port = mr_test_free_port();
    rp->admin_port = mr_test_free_port();
    snprintf(rp->cfg, sizeof rp->cfg, "%s/%s.json", dir, node);
    snprintf(rp->log, sizeof rp->log, "%s/%s.log", dir, node);
    bool own_ip_limit = strstr(limits, "max_connections_per_ip") != NULL;
    /* A URL, or a whole `nats` value (mr_test_nats_json(): credentials and TLS). */
    char nats[4096];
    snprintf(nats, sizeof nats, nats_url[0] == '{' || nats_url[0] == '[' ? "%s" : "[\"%s\"]",
             nats_url);
    char text[8192];
    snprintf(text, sizeof text,
             "{\"region\":\"%s\",\"node_id\":\"%s\",\"listen\":\"127.0.0.1:%d\","
             "\"admin_listen\":\"127.0.0.1:%d\",\"nats\":%s,"
             "\"auth\":{\"secret\":\"%s\"},\"drain_grace_ms\":700,\"log_level\":\"debug\","
             "\"limits\":{%s%s%s}%s%s}",
             region, node, rp->port, rp->admin_port, nats, MR_TEST_SECRET,
             own_ip_limit ? "" : "\"max_connections_per_ip\":0",
             limits[0] && !own_ip_limit ? "," : "", limits, extra[0] ? "," : "", extra);
    ck_assert_int_eq(mr_test_write_file(rp->cfg, text), 0);
}

void mr_test_relay_wait_ready(mr_test_relay *rp, int want_status, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    int status = -1;
    while (mr_test_now_ms() < deadline) {
        char *body;
        status = mr_test_http_get("127.0.0.1", rp->admin_port, "/readyz", &body);
        free(body);
        if (status == want_status)
            return;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("relay on %d: /readyz stayed %d, wanted %d (log %s)", rp->port, status,
                 want_status, rp->log);
}

void mr_test_relay_start(mr_test_relay *rp, const char *binary)
{
    char *argv[] = {(char *)binary, "--config", rp->cfg, NULL};
    rp->pid = mr_test_spawn(argv, rp->log);
    ck_assert_msg(mr_test_wait_port("127.0.0.1", rp->port, 10000) == 0,
                  "relay did not listen; see %s", rp->log);
    mr_test_relay_wait_ready(rp, 200, 15000);
}

void mr_test_relay_stop_clean(mr_test_relay *rp)
{
    if (rp->pid <= 0)
        return;
    int st = mr_test_stop(rp->pid, SIGINT, 20000);
    rp->pid = 0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay exited with status %d; see %s", st,
                  rp->log);
}

long mr_test_relay_metric(mr_test_relay *rp, const char *name)
{
    return mr_test_metric(rp->admin_port, name);
}

char *mr_test_token(const char *user, long exp_offset_s, const char *rooms)
{
    char claims[512];
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%ld%s%s}", user,
             (long)time(NULL) + exp_offset_s, rooms ? ",\"rooms\":" : "", rooms ? rooms : "");
    json_t *c = json_loads(claims, 0, NULL);
    ck_assert_ptr_nonnull(c);
    char *t = mr_jwt_sign((const unsigned char *)MR_TEST_SECRET, strlen(MR_TEST_SECRET), c);
    json_decref(c);
    return t;
}

void mr_test_expect(mr_ws *ws, const char *needle)
{
    char *f = mr_ws_expect(ws, needle, 5000);
    ck_assert_msg(f != NULL, "no frame containing %s", needle);
    free(f);
}

void mr_test_hello(mr_ws *ws, mr_test_relay *rp, const char *user, const char *rooms)
{
    ck_assert_int_eq(mr_ws_connect(ws, "127.0.0.1", rp->port, NULL), 101);
    char *t = mr_test_token(user, 3600, rooms);
    char frame[2048];
    snprintf(frame, sizeof frame, "{\"type\":\"hello\",\"id\":1,\"token\":\"%s\"}", t);
    free(t);
    ck_assert_int_eq(mr_ws_send_text(ws, frame), 0);
    mr_test_expect(ws, "\"type\":\"welcome\"");
}

void mr_test_join(mr_ws *ws, const char *room)
{
    char frame[256];
    snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"%s\"}", room);
    mr_ws_send_text(ws, frame);
    mr_test_expect(ws, "\"type\":\"joined\"");
}

void mr_test_publish(mr_ws *ws, const char *room, const char *mid, const char *data)
{
    size_t n = strlen(data) + strlen(room) + 2 * strlen(mid) + 128;
    char *frame = malloc(n);
    snprintf(frame, n,
             "{\"type\":\"publish\",\"id\":\"%s\",\"room\":\"%s\",\"mid\":\"%s\",\"data\":%s}", mid,
             room, mid, data);
    ck_assert_int_eq(mr_ws_send_text(ws, frame), 0);
    free(frame);
}

char *mr_test_next_message(mr_ws *ws, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0)
            return NULL;
        char *p;
        int cc;
        int op = mr_ws_recv(ws, left, &p, NULL, &cc);
        if (op < 0)
            return NULL;
        if (op == 8) {
            free(p);
            return NULL;
        }
        if (strstr(p, "\"type\":\"message\""))
            return p;
        free(p);
    }
}
