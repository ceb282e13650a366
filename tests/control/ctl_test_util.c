/*
 * Shared helpers for the control plane suites (see ctl_test_util.h). The
 * control binary's path comes from the build (CTL_BINARY).
 */
#include "ctl_test_util.h"
#include "mr_buf.h"
#include "mr_proto.h"
#include "mr_stream.h"
#include "mr_test.h"

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ctl_proc_init(ctl_proc *p, const char *nats_url, const char *conninfo, const char *region,
                   const char *regions_json, const char *extra)
{
    memset(p, 0, sizeof *p);
    p->dir = mr_test_tmpdir("ctl");
    p->http_port = mr_test_free_port();
    p->admin_port = mr_test_free_port();
    snprintf(p->cfg, sizeof p->cfg, "%s/control.json", p->dir);
    snprintf(p->log, sizeof p->log, "%s/control.log", p->dir);
    /* A URL, or a whole `nats` value (mr_test_nats_json(): credentials and TLS). */
    char nats[4096];
    snprintf(nats, sizeof nats, nats_url[0] == '{' || nats_url[0] == '[' ? "%s" : "[\"%s\"]",
             nats_url);
    char text[8192];
    snprintf(text, sizeof text,
             "{\"region\":\"%s\",\"regions\":%s,\"nats\":%s,\"postgres\":\"%s\","
             "\"http_listen\":\"127.0.0.1:%d\",\"admin_listen\":\"127.0.0.1:%d\","
             "\"api_keys\":[\"%s\"],\"log_level\":\"info\"%s%s}\n",
             region, regions_json, nats, conninfo, p->http_port, p->admin_port, CTL_TEST_KEY,
             extra ? "," : "", extra ? extra : "");
    ck_assert(mr_test_write_file(p->cfg, text) == 0);
}

bool ctl_proc_wait_ready(ctl_proc *p, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (mr_test_now_ms() < deadline) {
        char *body = NULL;
        int st = mr_test_http_get("127.0.0.1", p->admin_port, "/readyz", &body);
        free(body);
        if (st == 200)
            return true;
        if (p->pid > 0 && !mr_test_alive(p->pid))
            return false;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

void ctl_proc_spawn(ctl_proc *p, const char *env)
{
    char *argv[] = {CTL_BINARY, "--config", p->cfg, NULL};
    char name[128] = "";
    if (env) {
        const char *eq = strchr(env, '=');
        ck_assert(eq != NULL);
        snprintf(name, sizeof name, "%.*s", (int)(eq - env), env);
        setenv(name, eq + 1, 1);
    }
    p->pid = mr_test_spawn(argv, p->log);
    if (env)
        unsetenv(name);
}

void ctl_proc_start(ctl_proc *p, const char *env)
{
    ctl_proc_spawn(p, env);
    ck_assert_msg(ctl_proc_wait_ready(p, 30000), "meridian-control not ready; see %s", p->log);
}

int ctl_proc_wait_readyz(ctl_proc *p, const char *needle, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (mr_test_now_ms() < deadline) {
        char *body = NULL;
        int st = mr_test_http_get("127.0.0.1", p->admin_port, "/readyz", &body);
        bool found = body && strstr(body, needle);
        free(body);
        if (found)
            return st;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

bool ctl_proc_log_has(ctl_proc *p, const char *needle)
{
    FILE *f = fopen(p->log, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    (void)fclose(f); /* opened to read only */
    return found;
}

int ctl_proc_stop(ctl_proc *p)
{
    int st = mr_test_stop(p->pid, SIGTERM, 15000);
    p->pid = 0;
    return st;
}

void ctl_proc_free(ctl_proc *p)
{
    if (!p->dir)
        return;
    char *argv[] = {"rm", "-rf", p->dir, NULL};
    mr_test_wait_exit(mr_test_spawn(argv, NULL), 30000);
    free(p->dir);
    p->dir = NULL;
}

void ctl_test_stream(jsCtx *js, const char *region, const mr_stream_config *cfg)
{
    mr_stream_config def;
    mr_stream_config_init(&def);
    char err[256];
    ck_assert_msg(mr_stream_ensure(js, region, cfg ? cfg : &def, err, sizeof err) == 0,
                  "stream for %s: %s", region, err);
}

natsConnection *ctl_test_nats(const char *url)
{
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    ck_assert_msg(s == NATS_OK, "connect to %s: %s", url, natsStatus_GetText(s));
    return nc;
}

/* Publish one envelope with `data` (borrowed) the way a relay does. */
static int publish_data(jsCtx *js, const char *region, const char *room, const char *from,
                        const char *mid, int64_t ts, json_t *data, bool msg_id_header, char *msg_id)
{
    mr_msg_id(room, strlen(room), from, mid, strlen(mid), msg_id);
    mr_envelope e = {.room = room,
                     .room_len = strlen(room),
                     .msg_id = msg_id,
                     .from = from,
                     .mid = mid,
                     .mid_len = strlen(mid),
                     .region = region,
                     .node = "test-relay",
                     .ts_ms = ts,
                     .data = data};
    mr_buf b = MR_BUF_INIT;
    mr_proto_message(&b, &e);
    char subj[256];
    snprintf(subj, sizeof subj, "meridian.msg.%s.%s", region, room);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    if (msg_id_header)
        po.MsgId = msg_id;
    jsPubAck *pa = NULL;
    natsStatus s = js_Publish(&pa, js, subj, b.data, (int)b.len, &po, NULL);
    mr_buf_free(&b);
    if (pa)
        jsPubAck_Destroy(pa);
    return s == NATS_OK ? 0 : -1;
}

int ctl_test_publish(jsCtx *js, const char *region, const char *room, const char *from,
                     const char *mid, int64_t ts, bool msg_id_header, char *msg_id)
{
    json_t *data = json_pack("{s:s,s:I}", "text", mid, "n", (json_int_t)ts);
    int rc = publish_data(js, region, room, from, mid, ts, data, msg_id_header, msg_id);
    json_decref(data);
    return rc;
}

int ctl_test_publish_sized(jsCtx *js, const char *region, const char *room, const char *from,
                           const char *mid, int64_t ts, size_t data_bytes, char *msg_id)
{
    char *pad = malloc(data_bytes + 1);
    memset(pad, 'x', data_bytes);
    pad[data_bytes] = '\0';
    json_t *data = json_pack("{s:s,s:s}", "text", mid, "pad", pad);
    free(pad);
    int rc = publish_data(js, region, room, from, mid, ts, data, true, msg_id);
    json_decref(data);
    return rc;
}

json_t *ctl_test_history(natsConnection *nc, const char *room, const char *body, size_t *reply_len)
{
    char subj[200];
    snprintf(subj, sizeof subj, "meridian.history.%s", room);
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_RequestString(&reply, nc, subj, body, 10000);
    ck_assert_msg(s == NATS_OK, "history request %s on %s: %s", body, room, natsStatus_GetText(s));
    json_t *o = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    ck_assert_msg(o != NULL, "reply is not JSON: %.200s", natsMsg_GetData(reply));
    if (reply_len)
        *reply_len = (size_t)natsMsg_GetDataLength(reply);
    natsMsg_Destroy(reply);
    return o;
}

int64_t ctl_test_sql_int(mr_test_pg *pg, const char *sql)
{
    char *v = mr_test_pg_value(pg, sql);
    if (!v)
        return -1;
    int64_t n = v[0] ? atoll(v) : -1;
    free(v);
    return n;
}

bool ctl_test_wait_rows(mr_test_pg *pg, int64_t want, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (mr_test_now_ms() < deadline) {
        if (ctl_test_sql_int(pg, "SELECT count(*) FROM messages") == want)
            return true;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

int64_t ctl_test_check_history(mr_test_pg *pg)
{
    /* Rooms whose seqs are not exactly 1..count: must be none. */
    int64_t bad = ctl_test_sql_int(pg, "SELECT count(*) FROM (SELECT room FROM messages GROUP BY "
                                       "room HAVING min(seq) <> 1 OR max(seq) <> count(*) OR "
                                       "count(DISTINCT seq) <> count(*)) t");
    ck_assert_int_eq(bad, 0);
    int64_t dups = ctl_test_sql_int(pg, "SELECT count(*) - count(DISTINCT (room, msg_id)) FROM "
                                        "messages");
    ck_assert_int_eq(dups, 0);
    /* The identity table and the history agree one to one. */
    int64_t orphans = ctl_test_sql_int(pg, "SELECT count(*) FROM message_ids i LEFT JOIN messages "
                                           "m USING (room, msg_id) WHERE m.seq IS DISTINCT FROM "
                                           "i.seq");
    ck_assert_int_eq(orphans, 0);
    /* rooms.last_seq is the highest seq handed out. */
    int64_t lag = ctl_test_sql_int(pg, "SELECT count(*) FROM rooms r WHERE last_seq <> (SELECT "
                                       "COALESCE(max(seq),0) FROM messages m WHERE m.room = "
                                       "r.room)");
    ck_assert_int_eq(lag, 0);
    return ctl_test_sql_int(pg, "SELECT count(*) FROM messages");
}
