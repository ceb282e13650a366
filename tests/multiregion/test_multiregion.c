/*
 * Three regions on loopback with real servers: a NATS supercluster rendered
 * by meridian-regions from a copy of regions/local.json (one nats-server per
 * region, gateways between them, JetStream), locked as scripts/up runs it
 * (mutual TLS everywhere, one nkey user per role and region with Meridian's
 * permissions, a cluster password on routes and gateways), two relays per region whose
 * region stream is placed in the region's cluster, one meridian-control in
 * eu-west persisting all three region streams, and PostgreSQL.
 *
 * Each test checks one promise across regions: delivery exactly once with
 * the same seq everywhere; presence that converges, loses a SIGKILLed
 * relay's members within a bounded time and keeps a drained relay's members
 * without a gap; resume in another region; and a whole region lost and
 * restored without losing or duplicating acknowledged messages.
 *
 * Time bounds checked here (documented in docs/local.md):
 *   presence after a join or a leave: every member in every region within 3 s
 *   members of a SIGKILLed relay gone everywhere: within 5 s (heartbeat 1 s,
 *   expiry after 3 missed heartbeats, plus one tick)
 */
#include "ctl_test_util.h"
#include "mr_nats_opts.h"
#include "mr_test.h"
#include "mr_test_member.h"
#include "mr_test_pg.h"
#include "mr_test_region.h"
#include "mr_test_relay.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define PRESENCE_BOUND_MS 3000
#define KILL_BOUND_MS     5000

static mr_test_deploy dep;
static mr_test_pg pg;
static ctl_proc ctl;

static void setup(void)
{
    (void)signal(SIGPIPE, SIG_IGN); /* writes to a killed relay must fail, not kill the test */
    /* Locked as scripts/up runs it: mutual TLS, per-role nkeys and permissions. */
    mr_test_deploy_nats_locked(&dep, MERIDIAN_SOURCE_DIR, MERIDIAN_REGIONS_BIN);
    mr_test_pg_start(&pg, false);
    /* Relays first: they create each region's stream with its placement. */
    mr_test_deploy_relays(&dep, MERIDIAN_RELAY_BIN, "");
    char *nats = mr_test_deploy_nats_json(&dep, "control", 0);
    ctl_proc_init(&ctl, nats, pg.conninfo, dep.r[0].name, "[\"eu-west\",\"us-east\",\"ap-south\"]",
                  "\"batch\":{\"max_messages\":200,\"max_wait_ms\":20},"
                  /* A batch stranded by a killed region comes back in 5 s, not 30. */
                  "\"consumer\":{\"ack_wait_ms\":5000}");
    ctl_proc_start(&ctl, NULL);
    free(nats);
}

static void teardown(void)
{
    /* The control plane first, so its log ends with its own shutdown, not a lost NATS. */
    ctl_proc_stop(&ctl);
    mr_test_deploy_stop(&dep);
    mr_test_pg_destroy(&pg);
}

/* A connection to region `i`'s server as `role` of that region, with the daemons' own code. */
static natsConnection *connect_as(const char *role, int i)
{
    char *json = mr_test_deploy_nats_json(&dep, role, i);
    json_t *root = json_pack("{s:o}", "nats", json_loads(json, 0, NULL));
    mr_nats_conf c;
    mr_nats_conf_init(&c, NULL);
    mr_cfg cfg = {.file = "test"};
    mr_nats_conf_read(&c, &cfg, root, "nats");
    json_decref(root);
    free(json);
    natsOptions *o = NULL;
    char err[600];
    ck_assert_int_eq(natsOptions_Create(&o), NATS_OK);
    ck_assert_msg(mr_nats_conf_apply(&c, o, err, sizeof err) == 0, "%s", err);
    natsOptions_SetAllowReconnect(o, false);
    natsConnection *nc = NULL;
    natsStatus st = natsConnection_Connect(&nc, o);
    ck_assert_msg(st == NATS_OK, "%s of %s: %s", role, dep.r[i].name, natsStatus_GetText(st));
    natsOptions_Destroy(o);
    mr_nats_conf_free(&c);
    return nc;
}

static uint64_t stream_msgs(natsConnection *nc, const char *stream)
{
    jsCtx *js = NULL;
    ck_assert_int_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    ck_assert_int_eq(js_GetStreamInfo(&si, js, stream, NULL, &jerr), NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return n;
}

/* Publish a forged `message` frame the way the forger did; the server must drop it. */
static void forge(natsConnection *nc, const char *subject)
{
    const char *frame = "{\"type\":\"message\",\"room\":\"forgery\",\"from\":\"mallory\","
                        "\"msg_id\":\"6d616c6c6f72792d666f72676572792d\",\"data\":{\"text\":"
                        "\"send your password to mallory\"}}";
    natsMsg *m = NULL;
    ck_assert_int_eq(natsMsg_Create(&m, subject, NULL, frame, (int)strlen(frame)), NATS_OK);
    ck_assert_int_eq(natsMsgHeader_Set(m, "Nats-Msg-Id", "6d616c6c6f72792d666f72676572792d"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_PublishMsg(nc, m), NATS_OK);
    natsMsg_Destroy(m);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 5000), NATS_OK);
    const char *text = NULL;
    ck_assert_int_eq(natsConnection_GetLastError(nc, &text), NATS_NOT_PERMITTED);
    ck_assert_msg(strstr(text, "Permissions Violation for Publish"), "%s", text);
}

static mr_test_relay *relay_of(int region, int k)
{
    return &dep.r[region].relays[k];
}

/* ---- a member: one WebSocket and what it has seen ---- */

typedef struct member {
    mr_ws ws;
    bool open;
    char user[32];
    json_t *count;  /* msg_id -> number of message frames */
    json_t *seq;    /* msg_id -> seq (from a commit or a message with seq) */
    json_t *leaves; /* user -> presence leave events */
    json_t *acks;   /* mid -> msg_id */
    json_t *list;   /* users of the last presence reply */
    json_t *joined; /* the last joined frame */
    bool reconnect;
} member;

static void member_init(member *m, const char *user)
{
    memset(m, 0, sizeof *m);
    snprintf(m->user, sizeof m->user, "%s", user);
    m->count = json_object();
    m->seq = json_object();
    m->leaves = json_object();
    m->acks = json_object();
    m->list = json_object();
}

static void member_free(member *m)
{
    if (m->open)
        mr_ws_close(&m->ws);
    json_decref(m->count);
    json_decref(m->seq);
    json_decref(m->leaves);
    json_decref(m->acks);
    json_decref(m->list);
    json_decref(m->joined);
}

static void bump(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void record(member *m, json_t *j)
{
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *id = json_string_value(json_object_get(j, "msg_id"));
    json_t *seq = json_object_get(j, "seq");
    if (!type)
        return;
    if (strcmp(type, "message") == 0 && id)
        bump(m->count, id);
    if (id && json_is_integer(seq))
        json_object_set(m->seq, id, seq);
    if (strcmp(type, "ack") == 0 && id)
        json_object_set_new(m->acks, json_string_value(json_object_get(j, "mid")), json_string(id));
    if (strcmp(type, "reconnect") == 0)
        m->reconnect = true;
    if (strcmp(type, "joined") == 0) {
        json_decref(m->joined);
        m->joined = json_incref(j);
    }
    if (strcmp(type, "presence") == 0) {
        const char *ev = json_string_value(json_object_get(j, "event"));
        json_t *members = json_object_get(j, "members");
        if (ev && strcmp(ev, "leave") == 0)
            bump(m->leaves, json_string_value(json_object_get(j, "user")));
        if (json_is_array(members)) {
            json_object_clear(m->list);
            size_t i;
            json_t *e;
            json_array_foreach(members, i, e)
            {
                json_object_set(m->list, json_string_value(json_object_get(e, "user")),
                                json_object_get(e, "sessions"));
            }
        }
    }
}

/* Read and record at most one frame. Returns false on time-out or a closed connection. */
static bool pump(member *m, int timeout_ms)
{
    if (!m->open)
        return false;
    char *p = NULL;
    int cc;
    int op = mr_ws_recv(&m->ws, timeout_ms, &p, NULL, &cc);
    if (op == -2 || op == 8) {
        m->open = false;
        mr_ws_close(&m->ws);
    }
    if (op == 1 && p) {
        json_t *j = json_loads(p, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", p);
        record(m, j);
        json_decref(j);
    }
    free(p);
    return op == 1;
}

/* Read everything that arrives within `ms` on every member (observing absence needs a window). */
static void pump_all_for(member *ms, int n, int ms_window)
{
    int64_t end = mr_test_now_ms() + ms_window;
    while (mr_test_now_ms() < end)
        for (int i = 0; i < n; i++)
            while (mr_test_now_ms() < end && pump(&ms[i], 5))
                ;
}

__attribute__((format(printf, 2, 3))) static void send_frame(member *m, const char *fmt, ...)
{
    char frame[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(frame, sizeof frame, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < sizeof frame, "frame longer than %zu bytes", sizeof frame);
    ck_assert_int_eq(mr_ws_send_text(&m->ws, frame), 0);
}

/* Connect as m->user to relay `rp` and join `room` (with since >= 0: resume). */
static void member_join(member *m, mr_test_relay *rp, const char *room, long since)
{
    mr_test_hello(&m->ws, rp, m->user, NULL);
    m->open = true;
    json_decref(m->joined);
    m->joined = NULL;
    if (since >= 0)
        send_frame(m, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"%s\",\"since\":%ld}", room,
                   since);
    else
        send_frame(m, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"%s\"}", room);
    int64_t deadline = mr_test_now_ms() + 10000;
    while (!m->joined) {
        ck_assert_msg(mr_test_now_ms() < deadline, "%s: no joined for %s", m->user, room);
        pump(m, 100);
    }
}

static void publish(member *m, const char *room, const char *mid)
{
    char data[96];
    snprintf(data, sizeof data, "{\"text\":\"%s\"}", mid);
    mr_test_publish(&m->ws, room, mid, data);
}

static void wait_acks(member *m, size_t n, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (json_object_size(m->acks) < n) {
        ck_assert_msg(mr_test_now_ms() < deadline, "%s: %zu of %zu acks", m->user,
                      json_object_size(m->acks), n);
        pump(m, 50);
    }
}

/* Until every member has a seq for `n` messages. */
static void wait_seqs(member *ms, int n_members, size_t n, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (int i = 0; i < n_members; i++)
        while (json_object_size(ms[i].seq) < n) {
            ck_assert_msg(mr_test_now_ms() < deadline, "%s: seqs of %zu of %zu messages",
                          ms[i].user, json_object_size(ms[i].seq), n);
            pump(&ms[i], 50);
        }
}

static int64_t history_count(const char *room)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE room = '%s'", room);
    return ctl_test_sql_int(&pg, sql);
}

static void wait_history(const char *room, int64_t want, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms, n = -1;
    while (mr_test_now_ms() < deadline && (n = history_count(room)) < want) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(n == want, "history of %s holds %lld messages, want %lld", room, (long long)n,
                  (long long)want);
}

/* Every message seen exactly once, and the seqs are exactly 1..n. */
static void check_exactly_once(member *m, size_t n)
{
    ck_assert_msg(json_object_size(m->count) == n, "%s saw %zu distinct messages, want %zu",
                  m->user, json_object_size(m->count), n);
    const char *id;
    json_t *v;
    json_object_foreach(m->count, id, v)
    {
        ck_assert_msg(json_integer_value(v) == 1, "%s saw %s %lld times", m->user, id,
                      (long long)json_integer_value(v));
    }
    char *seen = calloc(n + 1, 1);
    json_object_foreach(m->seq, id, v)
    {
        json_int_t s = json_integer_value(v);
        ck_assert_msg(s >= 1 && (size_t)s <= n && !seen[s], "%s: bad or repeated seq %lld", m->user,
                      (long long)s);
        seen[s] = 1;
    }
    free(seen);
}

START_TEST(message_reaches_every_region_once_with_one_seq)
{
    enum { NM = MR_TEST_NREGIONS * MR_TEST_RELAYS_PER_REGION, NP = MR_TEST_NREGIONS, PER = 10 };
    member ms[NM + NP];
    char user[32];
    /* A member on every relay, and a publisher in every region (also members). */
    for (int i = 0; i < NM; i++) {
        snprintf(user, sizeof user, "m%d", i);
        member_init(&ms[i], user);
        member_join(&ms[i], relay_of(i / MR_TEST_RELAYS_PER_REGION, i % MR_TEST_RELAYS_PER_REGION),
                    "everywhere", -1);
    }
    for (int p = 0; p < NP; p++) {
        snprintf(user, sizeof user, "p%d", p);
        member_init(&ms[NM + p], user);
        member_join(&ms[NM + p], relay_of(p, 1), "everywhere", -1);
    }
    char mid[32];
    for (int j = 0; j < PER; j++)
        for (int p = 0; p < NP; p++) {
            snprintf(mid, sizeof mid, "p%d-%d", p, j);
            publish(&ms[NM + p], "everywhere", mid);
        }
    for (int p = 0; p < NP; p++)
        wait_acks(&ms[NM + p], PER, 15000);
    /* Long enough for one redelivery (consumer.ack_wait_ms, 30 s) on a loaded machine. */
    wait_seqs(ms, NM + NP, NP * PER, 45000);
    /* A late duplicate would arrive right after: read a little longer. */
    pump_all_for(ms, NM + NP, 500);
    for (int i = 0; i < NM + NP; i++) {
        check_exactly_once(&ms[i], NP * PER);
        ck_assert_msg(json_equal(ms[i].seq, ms[0].seq), "%s and %s disagree on seqs", ms[i].user,
                      ms[0].user);
    }
    wait_history("everywhere", NP * PER, 10000);
    ck_assert_int_eq(ctl_test_check_history(&pg), NP * PER);
    for (int i = 0; i < NM + NP; i++)
        member_free(&ms[i]);
}
END_TEST

START_TEST(resume_in_another_region_gets_exactly_the_missed_messages)
{
    member pub, x;
    member_init(&pub, "pub");
    member_init(&x, "traveller");
    member_join(&pub, relay_of(0, 0), "travel", -1);
    member_join(&x, relay_of(1, 0), "travel", -1); /* us-east */
    char mid[32];
    for (int i = 0; i < 5; i++) {
        snprintf(mid, sizeof mid, "before-%d", i);
        publish(&pub, "travel", mid);
    }
    wait_seqs(&x, 1, 5, 15000);
    /* x leaves us-east having seen seqs 1..5; 7 more are published meanwhile. */
    mr_ws_close(&x.ws);
    x.open = false;
    for (int i = 0; i < 7; i++) {
        snprintf(mid, sizeof mid, "missed-%d", i);
        publish(&pub, "travel", mid);
    }
    wait_acks(&pub, 12, 15000);
    wait_history("travel", 12, 15000);
    /* x comes back in ap-south with since=5. */
    member y;
    member_init(&y, "traveller");
    member_join(&y, relay_of(2, 1), "travel", 5);
    ck_assert_msg(json_is_true(json_object_get(y.joined, "recovered")), "joined: %s",
                  json_dumps(y.joined, 0));
    ck_assert_int_eq(json_integer_value(json_object_get(y.joined, "history")), 7);
    int64_t deadline = mr_test_now_ms() + 10000;
    while (json_object_size(y.count) < 7 && mr_test_now_ms() < deadline)
        pump(&y, 50);
    pump_all_for(&y, 1, 500);
    ck_assert_int_eq(json_object_size(y.count), 7);
    for (int i = 0; i < 7; i++) {
        snprintf(mid, sizeof mid, "missed-%d", i);
        const char *id = json_string_value(json_object_get(pub.acks, mid));
        ck_assert_ptr_nonnull(id);
        ck_assert_msg(json_integer_value(json_object_get(y.count, id)) == 1, "%s not once", mid);
        ck_assert_int_eq(json_integer_value(json_object_get(y.seq, id)), 6 + i);
    }
    member_free(&pub);
    member_free(&x);
    member_free(&y);
}
END_TEST

/* Ask every open member for the room's presence until each lists exactly `want` users. */
static bool presence_is(member *ms, int n, const char *room, json_t *want, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++) {
            if (!ms[i].open)
                continue;
            json_object_clear(ms[i].list);
            send_frame(&ms[i], "{\"type\":\"presence\",\"id\":\"p\",\"room\":\"%s\"}", room);
            int64_t d2 = mr_test_now_ms() + 2000;
            while (json_object_size(ms[i].list) == 0 && mr_test_now_ms() < d2)
                pump(&ms[i], 20);
            const char *u;
            json_t *v;
            bool same = json_object_size(ms[i].list) == json_object_size(want);
            json_object_foreach(want, u, v) same = same && json_object_get(ms[i].list, u);
            all = all && same;
        }
        if (all)
            return true;
        if (mr_test_now_ms() >= deadline)
            return false;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static json_t *users_of(member *ms, int n)
{
    json_t *w = json_object();
    for (int i = 0; i < n; i++)
        if (ms[i].open)
            json_object_set_new(w, ms[i].user, json_true());
    return w;
}

START_TEST(presence_across_regions_converges_and_has_no_zombies)
{
    enum { NM = MR_TEST_NREGIONS * MR_TEST_RELAYS_PER_REGION };
    member ms[NM];
    char user[32];
    int64_t t0 = mr_test_now_ms();
    for (int i = 0; i < NM; i++) {
        snprintf(user, sizeof user, "u%d", i);
        member_init(&ms[i], user);
        member_join(&ms[i], relay_of(i / MR_TEST_RELAYS_PER_REGION, i % MR_TEST_RELAYS_PER_REGION),
                    "pres", -1);
    }
    int64_t t_joined = mr_test_now_ms();
    json_t *want = users_of(ms, NM);
    ck_assert_msg(presence_is(ms, NM, "pres", want, PRESENCE_BOUND_MS),
                  "presence did not converge to 6 users within %d ms", PRESENCE_BOUND_MS);
    printf("presence: 6 members on 6 relays in 3 regions converged %lld ms after the last join "
           "(joins took %lld ms)\n",
           (long long)(mr_test_now_ms() - t_joined), (long long)(t_joined - t0));

    /* A leave reaches every region. */
    send_frame(&ms[5], "{\"type\":\"leave\",\"id\":\"l\",\"room\":\"%s\"}", "pres");
    int64_t t_leave = mr_test_now_ms();
    for (int i = 0; i < 5; i++)
        while (!json_object_get(ms[i].leaves, "u5")) {
            ck_assert_msg(mr_test_now_ms() - t_leave < PRESENCE_BOUND_MS, "%s: no leave of u5",
                          ms[i].user);
            pump(&ms[i], 20);
        }
    printf("presence: a leave reached every region in %lld ms\n",
           (long long)(mr_test_now_ms() - t_leave));
    mr_ws_close(&ms[5].ws);
    ms[5].open = false;

    /* Drain us-east-1 (u2): u2 moves to us-east-2; nobody may see u2 leave. */
    mr_test_relay *drained = relay_of(1, 0);
    kill(drained->pid, SIGTERM);
    int64_t t_drain = mr_test_now_ms();
    while (!ms[2].reconnect) {
        ck_assert_msg(ms[2].open, "u2 closed before its reconnect frame");
        ck_assert_msg(mr_test_now_ms() - t_drain < 5000, "u2 got no reconnect frame in 5 s");
        pump(&ms[2], 100);
    }
    member moved;
    member_init(&moved, "u2");
    member_join(&moved, relay_of(1, 1), "pres", -1);
    int st = mr_test_wait_exit(drained->pid, 15000);
    ck_assert_msg(st != -1, "drained relay did not exit");
    drained->pid = 0;
    member_free(&ms[2]);
    member_init(&ms[2], "u2-old"); /* placeholder, closed */
    /* The bye went out as it exited: give it a heartbeat to arrive everywhere. */
    pump_all_for(ms, NM, MR_TEST_PRESENCE_HEARTBEAT_MS + 500);
    for (int i = 0; i < NM; i++)
        ck_assert_msg(!json_object_get(ms[i].leaves, "u2"), "%s saw u2 leave during the drain",
                      ms[i].user);
    json_decref(want);
    want = json_pack("{s:b,s:b,s:b,s:b,s:b}", "u0", 1, "u1", 1, "u2", 1, "u3", 1, "u4", 1);
    ck_assert_msg(presence_is(ms, NM, "pres", want, PRESENCE_BOUND_MS), "u2 missing after drain");

    /* SIGKILL ap-south-1 (u4): u4 disappears everywhere within the bound. */
    kill(relay_of(2, 0)->pid, SIGKILL);
    int64_t t_kill = mr_test_now_ms();
    mr_test_stop(relay_of(2, 0)->pid, SIGKILL, 5000);
    relay_of(2, 0)->pid = 0;
    ms[4].open = false;
    mr_ws_close(&ms[4].ws);
    int observers[] = {0, 1, 3};
    for (size_t o = 0; o < 3; o++) {
        member *m = &ms[observers[o]];
        while (!json_object_get(m->leaves, "u4")) {
            ck_assert_msg(mr_test_now_ms() - t_kill < KILL_BOUND_MS,
                          "%s: u4 of a SIGKILLed relay still present after %d ms", m->user,
                          KILL_BOUND_MS);
            pump(m, 20);
        }
    }
    while (!json_object_get(moved.leaves, "u4")) {
        ck_assert_msg(mr_test_now_ms() - t_kill < KILL_BOUND_MS, "u2: u4 still present");
        pump(&moved, 20);
    }
    printf("presence: members of a SIGKILLed relay gone everywhere after %lld ms\n",
           (long long)(mr_test_now_ms() - t_kill));
    json_decref(want);
    want = json_pack("{s:b,s:b,s:b,s:b}", "u0", 1, "u1", 1, "u2", 1, "u3", 1);
    ck_assert(presence_is(ms, NM, "pres", want, PRESENCE_BOUND_MS));
    json_decref(want);
    for (int i = 0; i < NM; i++)
        member_free(&ms[i]);
    member_free(&moved);
}
END_TEST

START_TEST(region_outage_keeps_others_serving_and_catches_up)
{
    member a, e, u;
    member_init(&a, "ap");
    member_init(&e, "eu");
    member_init(&u, "us");
    member_join(&e, relay_of(0, 0), "outage", -1);
    member_join(&u, relay_of(1, 0), "outage", -1);
    member_join(&a, relay_of(2, 0), "outage", -1);
    char mid[32];
    for (int i = 0; i < 20; i++) {
        snprintf(mid, sizeof mid, "ap-%d", i);
        publish(&a, "outage", mid);
    }
    wait_acks(&a, 20, 15000);
    json_t *acked = json_object(); /* msg_id -> mid of every acknowledged message */
    const char *k;
    json_t *v;
    json_object_foreach(a.acks, k, v)
        json_object_set_new(acked, json_string_value(v), json_string(k));
    /* ap-south goes away at once: its nats-server and both relays. */
    mr_test_deploy_kill_region(&dep, 2);
    a.open = false;
    mr_ws_close(&a.ws);

    /* eu-west and us-east keep publishing and delivering to each other. */
    for (int i = 0; i < 10; i++) {
        snprintf(mid, sizeof mid, "eu-%d", i);
        publish(&e, "outage", mid);
        snprintf(mid, sizeof mid, "us-%d", i);
        publish(&u, "outage", mid);
    }
    wait_acks(&e, 10, 20000);
    wait_acks(&u, 10, 20000);
    json_object_foreach(e.acks, k, v)
        json_object_set_new(acked, json_string_value(v), json_string(k));
    json_object_foreach(u.acks, k, v)
        json_object_set_new(acked, json_string_value(v), json_string(k));
    int64_t deadline = mr_test_now_ms() + 10000;
    json_object_foreach(e.acks, k, v)
    {
        while (!json_object_get(u.count, json_string_value(v))) {
            ck_assert_msg(mr_test_now_ms() < deadline, "us-east did not get %s", k);
            pump(&u, 50);
        }
    }
    json_object_foreach(u.acks, k, v)
    {
        while (!json_object_get(e.count, json_string_value(v))) {
            ck_assert_msg(mr_test_now_ms() < deadline, "eu-west did not get %s", k);
            pump(&e, 50);
        }
    }

    /* ap-south returns, its relays too; it publishes again. */
    mr_test_deploy_nats_restart(&dep, 2);
    mr_test_deploy_relay_restart(&dep, 2, 0);
    mr_test_deploy_relay_restart(&dep, 2, 1);
    member a2;
    member_init(&a2, "ap");
    member_join(&a2, relay_of(2, 1), "outage", -1);
    for (int i = 0; i < 5; i++) {
        snprintf(mid, sizeof mid, "ap-after-%d", i);
        publish(&a2, "outage", mid);
    }
    wait_acks(&a2, 5, 20000);
    json_object_foreach(a2.acks, k, v)
        json_object_set_new(acked, json_string_value(v), json_string(k));
    ck_assert_int_eq(json_object_size(acked), 45);

    /* History: every acknowledged message exactly once, seqs 1..45 without gaps. */
    wait_history("outage", 45, 60000);
    ck_assert_int_eq(ctl_test_check_history(&pg), 45);
    json_object_foreach(acked, k, v)
    {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM message_ids WHERE room = 'outage' AND msg_id = '%s'::uuid",
                 k);
        ck_assert_msg(ctl_test_sql_int(&pg, sql) == 1, "acknowledged %s (%s) not in history",
                      json_string_value(v), k);
    }
    /* Members that stayed learn every seq, the caught-up ones included, once. */
    member both[] = {e, u};
    wait_seqs(both, 2, 45, 30000);
    pump_all_for(both, 2, 300);
    for (int i = 0; i < 2; i++) {
        json_object_foreach(both[i].count, k, v)
        {
            ck_assert_msg(json_integer_value(v) == 1, "%s saw %s twice", both[i].user, k);
        }
        ck_assert(json_equal(both[i].seq, both[0].seq));
    }
    json_decref(acked);
    member_free(&both[0]);
    member_free(&both[1]);
    member_free(&a2);
    member_free(&a);
}
END_TEST

/*
 * The forger of issue 12 (a raw HPUB of a `message` with a Nats-Msg-Id under
 * someone else's name) on a locked bus: without credentials it cannot
 * connect, with a health agent's key it cannot publish a message, with an
 * eu-west relay's key it cannot publish into us-east. Nothing forged reaches
 * a member, a region stream or history, while a real message right after
 * goes everywhere.
 */
START_TEST(forged_messages_reach_no_member_and_no_history)
{
    mr_ws bob, alice;
    mr_test_hello(&bob, relay_of(1, 0), "bob", NULL);
    mr_test_join(&bob, "forgery");
    mr_test_hello(&alice, relay_of(0, 0), "alice", NULL);
    mr_test_join(&alice, "forgery");

    /* No credentials: TLS with a client certificate, but no key. */
    char *json = mr_test_deploy_nats_json(&dep, "relay", 1);
    json_t *root = json_pack("{s:o}", "nats", json_loads(json, 0, NULL));
    json_object_del(json_object_get(root, "nats"), "nkey_seed_file");
    mr_nats_conf anon;
    mr_nats_conf_init(&anon, NULL);
    mr_cfg cfg = {.file = "test"};
    mr_nats_conf_read(&anon, &cfg, root, "nats");
    char why[600];
    ck_assert_int_eq(mr_nats_probe(&anon, 5000, why, sizeof why), MR_NATS_AUTH);
    mr_nats_conf_free(&anon);
    json_decref(root);
    free(json);

    natsConnection *hc = connect_as("healthcheck", 0);
    forge(hc, "meridian.msg.eu-west.forgery");
    natsConnection_Destroy(hc);
    hc = connect_as("healthcheck", 1);
    forge(hc, "meridian.msg.us-east.forgery");
    natsConnection_Destroy(hc);
    natsConnection *relay_eu = connect_as("relay", 0);
    forge(relay_eu, "meridian.msg.us-east.forgery");
    natsConnection_Destroy(relay_eu);

    /* A real message after the forgeries: bob sees it, and nothing before it. */
    mr_test_publish(&alice, "forgery", "real-1", "{\"text\":\"hello bob\"}");
    mr_test_expect(&alice, "\"type\":\"ack\"");
    int64_t deadline = mr_test_now_ms() + 10000;
    for (;;) {
        char *frame = mr_test_next_message(&bob, (int)(deadline - mr_test_now_ms()));
        ck_assert_msg(frame != NULL, "bob never got alice's message");
        ck_assert_msg(!strstr(frame, "mallory"), "a forged message reached bob: %s", frame);
        bool real = strstr(frame, "\"from\":\"alice\"") != NULL;
        free(frame);
        if (real)
            break;
    }
    wait_history("forgery", 1, 15000);
    ck_assert_int_eq(
        ctl_test_sql_int(&pg, "SELECT count(*) FROM messages WHERE envelope LIKE '%mallory%'"), 0);
    /* The streams hold alice's message and nothing else. */
    natsConnection *control = connect_as("control", 0);
    ck_assert_int_eq(stream_msgs(control, "MERIDIAN_EU_WEST"), 1);
    ck_assert_int_eq(stream_msgs(control, "MERIDIAN_US_EAST"), 0);
    natsConnection_Destroy(control);
    mr_ws_close(&alice);
    mr_ws_close(&bob);
}
END_TEST

/* ---- once per member under faults (mr_test_member.h counts per session) ---- */

static long sum_counts(mr_test_member *ms, int n, const char *what, long *commits)
{
    long dups = 0, below = 0;
    *commits = 0;
    for (int i = 0; i < n; i++) {
        mr_test_member_report(&ms[i], what);
        dups += ms[i].dup_messages;
        below += ms[i].below_since;
        *commits += ms[i].dup_commits;
    }
    ck_assert_msg(below == 0, "%s: %ld history messages at or below since", what, below);
    return dups;
}

/*
 * Commits of one room come from three control planes (one per region,
 * sharing each region stream's consumer) out of seq order: every member
 * still gets one commit per message, and one message.
 */
START_TEST(commits_reach_each_member_once_from_three_control_planes)
{
    ctl_proc more[2];
    for (int i = 0; i < 2; i++) {
        char *nats = mr_test_deploy_nats_json(&dep, "control", i + 1);
        ctl_proc_init(&more[i], nats, pg.conninfo, dep.r[i + 1].name,
                      "[\"eu-west\",\"us-east\",\"ap-south\"]",
                      "\"batch\":{\"max_messages\":200,\"max_wait_ms\":20},"
                      "\"consumer\":{\"ack_wait_ms\":5000}");
        ctl_proc_start(&more[i], NULL);
        free(nats);
    }
    enum { NM = MR_TEST_NREGIONS * MR_TEST_RELAYS_PER_REGION, PER = 100 };
    mr_test_member ms[NM];
    for (int i = 0; i < NM; i++) {
        char user[16];
        snprintf(user, sizeof user, "m%d", i);
        mr_test_relay *rp[] = {
            relay_of(i / MR_TEST_RELAYS_PER_REGION, i % MR_TEST_RELAYS_PER_REGION)};
        mr_test_member_init(&ms[i], user, "three", rp, 1);
        ck_assert(mr_test_member_connect(&ms[i], 10000));
    }
    /* One publisher per region, interleaved. */
    char mid[32], data[32];
    for (int j = 0; j < PER; j++) {
        for (int p = 0; p < MR_TEST_NREGIONS; p++) {
            snprintf(mid, sizeof mid, "p%d-%d", p, j);
            snprintf(data, sizeof data, "%d", j);
            mr_test_member_publish(&ms[p * MR_TEST_RELAYS_PER_REGION], mid, data);
        }
        for (int k = 0; k < NM; k++)
            while (mr_test_member_pump(&ms[k], 1))
                ;
    }
    mr_test_members_settle(ms, NM, 60000, 1000);
    long commits = 0;
    long dups = sum_counts(ms, NM, "three control planes", &commits);
    ck_assert_msg(dups == 0, "%ld duplicate message frames", dups);
    ck_assert_msg(commits == 0, "%ld repeated commit frames", commits);
    wait_history("three", NM / MR_TEST_RELAYS_PER_REGION * PER, 10000);
    ck_assert_int_eq(ctl_test_check_history(&pg), MR_TEST_NREGIONS * PER);
    for (int i = 0; i < NM; i++)
        mr_test_member_free(&ms[i]);
    for (int i = 0; i < 2; i++)
        ctl_proc_stop(&more[i]);
}
END_TEST

/*
 * A region's NATS server and both its relays SIGKILLed while its publisher
 * is mid-stream: the publisher and the region's members fail over to
 * eu-west, the publisher retries what was not acknowledged (some of it was
 * delivered and stored in ap-south already), and ap-south comes back later
 * with its stream, whose copies the control plane stores once and commits
 * again. No member gets a message twice within a session.
 */
START_TEST(region_killed_no_duplicate_within_a_session)
{
    enum { NM = 5 };
    mr_test_member ms[NM];
    mr_test_relay *ap_eu[] = {relay_of(2, 0), relay_of(0, 0)};
    mr_test_relay *ap2_eu[] = {relay_of(2, 1), relay_of(0, 1)};
    mr_test_relay *eu[] = {relay_of(0, 0)}, *us[] = {relay_of(1, 0)}, *us2[] = {relay_of(1, 1)};
    mr_test_member_init(&ms[0], "ap-pub", "killed", ap_eu, 2);
    mr_test_member_init(&ms[1], "ap-member", "killed", ap2_eu, 2);
    mr_test_member_init(&ms[2], "eu-member", "killed", eu, 1);
    mr_test_member_init(&ms[3], "us-member", "killed", us, 1);
    mr_test_member_init(&ms[4], "us-member2", "killed", us2, 1);
    for (int i = 0; i < NM; i++)
        ck_assert(mr_test_member_connect(&ms[i], 10000));
    mr_test_members_publish(ms, NM, &ms[0], "a", 0, 100);
    /* Mid-burst: the last publishes are in flight when the region dies. */
    for (int i = 100; i < 140; i++) {
        char mid[32];
        snprintf(mid, sizeof mid, "a-%d", i);
        mr_test_member_publish(&ms[0], mid, "1");
    }
    mr_test_deploy_kill_region(&dep, 2);
    mr_test_members_publish(ms, NM, &ms[0], "b", 0, 100);
    mr_test_deploy_nats_restart(&dep, 2);
    mr_test_deploy_relay_restart(&dep, 2, 0);
    mr_test_deploy_relay_restart(&dep, 2, 1);
    mr_test_members_publish(ms, NM, &ms[0], "c", 0, 50);
    mr_test_members_settle(ms, NM, 90000, 2000);
    long commits = 0;
    long dups = sum_counts(ms, NM, "region killed", &commits);
    ck_assert_msg(dups == 0, "%ld duplicate message frames within sessions", dups);
    ck_assert_msg(commits == 0, "%ld repeated commit frames", commits);
    ck_assert_int_eq(ctl_test_check_history(&pg), (int64_t)json_object_size(ms[0].acked));
    for (int i = 0; i < NM; i++)
        mr_test_member_free(&ms[i]);
}
END_TEST

/*
 * Issue 16 §3: an ephemeral signal from one region reaches the room's
 * members on every relay of every region (core NATS across the gateways),
 * and leaves nothing in history.
 */
START_TEST(signal_reaches_every_region_and_no_history)
{
    enum { NM = MR_TEST_NREGIONS * MR_TEST_RELAYS_PER_REGION };
    member ms[NM];
    char user[32];
    for (int i = 0; i < NM; i++) {
        snprintf(user, sizeof user, "s%d", i);
        member_init(&ms[i], user);
        member_join(&ms[i], relay_of(i / MR_TEST_RELAYS_PER_REGION, i % MR_TEST_RELAYS_PER_REGION),
                    "typing", -1);
    }
    /* Signals are best effort: repeat until each member got one (interest may still be spreading).
     */
    int64_t deadline = mr_test_now_ms() + 20000;
    bool got[NM] = {false};
    int missing = NM - 1;
    while (missing > 0) {
        ck_assert_msg(mr_test_now_ms() < deadline, "%d members never got the signal", missing);
        ck_assert_int_eq(
            mr_ws_send_text(&ms[0].ws,
                            "{\"type\":\"signal\",\"room\":\"typing\",\"data\":{\"typing\":true}}"),
            0);
        for (int i = 1; i < NM; i++) {
            if (got[i])
                continue;
            char *f = mr_ws_expect(&ms[i].ws, "\"type\":\"signal\"", 300);
            if (f) {
                ck_assert_msg(strstr(f, "\"from\":\"s0\"") && strstr(f, "{\"typing\":true}"), "%s",
                              f);
                got[i] = true;
                missing--;
                free(f);
            }
        }
    }
    ck_assert_int_eq(history_count("typing"), 0);
    for (int i = 0; i < NM; i++)
        member_free(&ms[i]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("multiregion");
    TCase *tc = tcase_create("three_regions");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, message_reaches_every_region_once_with_one_seq);
    tcase_add_test(tc, resume_in_another_region_gets_exactly_the_missed_messages);
    tcase_add_test(tc, presence_across_regions_converges_and_has_no_zombies);
    tcase_add_test(tc, region_outage_keeps_others_serving_and_catches_up);
    tcase_add_test(tc, forged_messages_reach_no_member_and_no_history);
    suite_add_tcase(s, tc);
    TCase *sig = tcase_create("signals");
    tcase_set_timeout(sig, 120);
    tcase_add_checked_fixture(sig, setup, teardown);
    tcase_add_test(sig, signal_reaches_every_region_and_no_history);
    suite_add_tcase(s, sig);
    TCase *once = tcase_create("once_per_member");
    tcase_set_timeout(once, 300);
    tcase_add_checked_fixture(once, setup, teardown);
    tcase_add_test(once, commits_reach_each_member_once_from_three_control_planes);
    tcase_add_test(once, region_killed_no_duplicate_within_a_session);
    suite_add_tcase(s, once);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
