/* Presence totals across relays: remote sessions, events on transitions, expiry by bye. */
#include "relay_suites.h"
#include "mr_jwt.h"
#include "relay_client.h"
#include "relay_fixture.h"
#include "relay_inbound.h"
#include "relay_presence.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static relay_fixture fx;
static relay_conn *alice, *bob;
static relay_room *room;

#define N1 "eu/relay-2/aaaaaaaaaaaa"
#define N2 "us/relay-1/bbbbbbbbbbbb"

static void setup(void)
{
    fx_init(&fx);
    alice = fx_conn(&fx, "alice");
    bob = fx_conn(&fx, "bob");
    room = fx_join(&fx, alice, "r", NULL)->room;
    relay_presence_local(&fx.r, room, "alice", +1, alice);
    fx_join(&fx, bob, "r", NULL);
    relay_presence_local(&fx.r, room, "bob", +1, bob);
}

static void teardown(void)
{
    fx_free(&fx);
}

static void on_presence(const char *rest, const char *reply, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void on_presence(const char *rest, const char *reply, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    relay_presence_on_message(&fx.r, rest, reply, body, (size_t)n);
}

static bool heartbeat(const char *body)
{
    return relay_presence_on_heartbeat(&fx.r, body, strlen(body));
}

static void set(const char *node, const char *user, int sessions)
{
    on_presence("r", NULL, "{\"op\":\"set\",\"node\":\"%s\",\"user\":\"%s\",\"sessions\":%d}", node,
                user, sessions);
}

/* Each of alice and bob got exactly this event (event NULL: no frame at all). */
static void expect_event(const char *event, const char *user, int sessions)
{
    relay_conn *cs[] = {alice, bob};
    for (int k = 0; k < 2; k++) {
        size_t n;
        char **f = fx_take(cs[k], &n);
        if (!event) {
            ck_assert_msg(n == 0, "%s got %s", cs[k]->user, n ? f[0] : "");
            fx_frames_free(f);
            continue;
        }
        ck_assert_msg(n == 1, "%s got %zu frames, expected %s %s", cs[k]->user, n, event, user);
        json_t *j = fx_json(f, 0);
        ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "presence");
        ck_assert_str_eq(json_string_value(json_object_get(j, "room")), "r");
        ck_assert_str_eq(json_string_value(json_object_get(j, "event")), event);
        ck_assert_str_eq(json_string_value(json_object_get(j, "user")), user);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "sessions")), sessions);
        json_decref(j);
        fx_frames_free(f);
    }
}

/* The room's members across relays equal `want` ("alice=2,bob=1"). */
static void expect_members(const char *want)
{
    mr_buf b = MR_BUF_INIT;
    relay_presence_members(&fx.r, room, &b);
    mr_buf_putc(&b, '\0');
    json_t *list = json_loads(b.data, 0, NULL);
    ck_assert_msg(json_is_array(list), "members: %s", b.data);
    char got[512] = "";
    /* Sorted by user so that the map's order does not matter. */
    const char *users[16];
    long sessions[16];
    size_t n = json_array_size(list);
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++) {
        users[i] = json_string_value(json_object_get(json_array_get(list, i), "user"));
        sessions[i] =
            (long)json_integer_value(json_object_get(json_array_get(list, i), "sessions"));
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(users[j], users[i]) < 0) {
                const char *u = users[i];
                users[i] = users[j];
                users[j] = u;
                long s = sessions[i];
                sessions[i] = sessions[j];
                sessions[j] = s;
            }
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s=%ld", i ? "," : "", users[i],
                 sessions[i]);
    ck_assert_str_eq(got, want);
    json_decref(list);
    mr_buf_free(&b);
}

START_TEST(presence_totals)
{
    /* Joining here: bob's arrival reached alice; the relay announced both. */
    size_t n;
    char **f = fx_take(alice, &n);
    ck_assert_uint_eq(n, 1);
    fx_frames_free(f);
    f = fx_take(bob, &n);
    fx_frames_free(f);
    ck_assert_int_eq(fake_nats.publishes, 2);
    ck_assert_str_eq(fake_nats.publish[1].subject, "meridian.presence.r");
    ck_assert_ptr_nonnull(strstr(fake_nats.publish[1].body, "\"user\":\"bob\",\"sessions\":1"));
    expect_members("alice=1,bob=1");

    set(N1, "carol", 2);
    expect_event("join", "carol", 2);
    set(N1, "alice", 3);
    expect_event("update", "alice", 4);
    set(N2, "carol", 1);
    expect_event("update", "carol", 3);
    expect_members("alice=4,bob=1,carol=3");
    /* The same report again changes nothing. */
    set(N2, "carol", 1);
    expect_event(NULL, NULL, 0);

    /* N1 leaves: its sessions go from every total at once. */
    heartbeat("{\"op\":\"bye\",\"node\":\"" N1 "\"}");
    f = fx_take(alice, &n);
    ck_assert_uint_eq(n, 2); /* carol 3 -> 1 and alice 4 -> 1, in the map's order */
    fx_frames_free(f);
    f = fx_take(bob, &n);
    ck_assert_uint_eq(n, 2);
    fx_frames_free(f);
    expect_members("alice=1,bob=1,carol=1");

    set(N2, "carol", 0);
    expect_event("leave", "carol", 0);
    expect_members("alice=1,bob=1");

    /* A snapshot from a third relay. */
    const char snap[] = "{\"node\":\"ap/relay-1/cccccccccccc\",\"users\":{\"dave\":2}}";
    ck_assert(relay_presence_snapshot_reply(&fx.r, "r", snap, sizeof snap - 1));
    expect_event("join", "dave", 2);
    /* One malformed entry makes the whole snapshot malformed: nothing of it is applied. */
    const char bad[] = "{\"node\":\"ap/relay-1/cccccccccccc\",\"users\":{\"erin\":1,\"x\":\"y\"}}";
    ck_assert(!relay_presence_snapshot_reply(&fx.r, "r", bad, sizeof bad - 1));
    expect_event(NULL, NULL, 0);
    expect_members("alice=1,bob=1,dave=2");
}
END_TEST

START_TEST(presence_bad_input)
{
    fx_discard(alice);
    fx_discard(bob);
    /* This relay's own reports, users past MR_JWT_SUB_MAX, junk: no change, no event. */
    set(fx.r.instance, "mallory", 1);
    char long_user[MR_JWT_SUB_MAX + 2];
    memset(long_user, 'u', sizeof long_user - 1);
    long_user[sizeof long_user - 1] = '\0';
    set(N1, long_user, 1);
    on_presence("r", NULL, "not json");
    on_presence("r", NULL, "{\"node\":\"" N1 "\",\"user\":7,\"sessions\":1}");
    on_presence("gone", NULL, "{\"node\":\"" N1 "\",\"user\":\"z\",\"sessions\":1}");
    relay_presence_snapshot_reply(&fx.r, "r", "[]", 2);
    expect_event(NULL, NULL, 0);
    expect_members("alice=1,bob=1");
    /* A user of exactly MR_JWT_SUB_MAX bytes is accepted, like the token's sub. */
    long_user[MR_JWT_SUB_MAX] = '\0';
    set(N1, long_user, 1);
    expect_event("join", long_user, 1);
}
END_TEST

/* Let every node heard of so far miss its heartbeats, then run the expiry. */
static void expire_all(void)
{
    size_t b;
    for (mr_map_entry *e = mr_map_first(&fx.r.presence_nodes, &b); e;
         e = mr_map_next(&fx.r.presence_nodes, &b, e))
        ((int64_t *)e->value)[0] = 0; /* node_info.last_seen_us: long ago */
    relay_presence_tick(&fx.r);
}

/*
 * A node id of RELAY_NODE_ID_MAX bytes or more used to be truncated on
 * expiry, so the expiry looked up a name that did not exist and looped
 * forever (issue 12). Ids that no relay can have are refused, and expiry
 * of the longest valid one ends.
 */
START_TEST(presence_long_node_id_neither_hangs_nor_sticks)
{
    fx_discard(alice);
    fx_discard(bob);
    char node[RELAY_NODE_ID_MAX + 40];
    memset(node, 'n', sizeof node - 1);
    node[sizeof node - 1] = '\0';
    char body[512];
    snprintf(body, sizeof body, "{\"node\":\"%s\",\"interval_ms\":1000}", node);
    ck_assert(!heartbeat(body));
    set(node, "carol", 1);
    expect_event(NULL, NULL, 0);
    expire_all();
    ck_assert_uint_eq(fx.r.presence_nodes.count, 0);

    /* The longest id a relay can have: region and node id of 64 bytes each, 12 hex digits. */
    char longest[64 + 1 + 64 + 1 + 12 + 1];
    memset(longest, 'a', sizeof longest - 1);
    longest[64] = longest[129] = '/';
    longest[sizeof longest - 1] = '\0';
    set(longest, "carol", 1);
    expect_event("join", "carol", 1);
    expire_all();
    expect_event("leave", "carol", 0);
    ck_assert_uint_eq(fx.r.presence_nodes.count, 0);
    expect_members("alice=1,bob=1");
}
END_TEST

START_TEST(presence_answers_snapshot_queries)
{
    int before = fake_nats.publishes;
    on_presence("r", "_INBOX.other.p.r", "{}");
    ck_assert_int_eq(fake_nats.publishes, before + 1);
    const fake_nats_call *c = &fake_nats.publish[before];
    ck_assert_str_eq(c->subject, "_INBOX.other.p.r");
    json_t *j = json_loads(c->body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "node")), fx.r.instance);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "users"), "alice")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "users"), "bob")), 1);
    json_decref(j);
}
END_TEST

/* A message as NATS delivers it, through the relay's subject dispatch. */
static void dispatch(const char *subject, const char *reply, const char *body)
{
    natsMsg *msg = NULL;
    ck_assert_int_eq(nats_Open(-1), NATS_OK); /* natsMsg_Destroy needs the library */
    ck_assert_int_eq(natsMsg_Create(&msg, subject, reply, body, (int)strlen(body)), NATS_OK);
    relay_inbound_message(&fx.r, msg);
    natsMsg_Destroy(msg);
}

/*
 * Heartbeats used to share meridian.presence.<room>'s namespace as
 * meridian.presence.hb, so the room "hb" lost its presence: its deltas were
 * taken for heartbeats and its snapshot requests went unanswered.
 */
START_TEST(presence_in_a_room_named_hb)
{
    relay_conn *carl = fx_conn(&fx, "carl");
    relay_room *hb = fx_join(&fx, carl, "hb", NULL)->room;
    relay_presence_local(&fx.r, hb, "carl", +1, carl);
    fx_discard(carl);
    dispatch("meridian.presence.hb", NULL,
             "{\"op\":\"set\",\"node\":\"" N1 "\",\"user\":\"dora\",\"sessions\":1}");
    size_t n;
    char **f = fx_take(carl, &n);
    ck_assert_msg(n == 1 && strstr(f[0], "\"event\":\"join\",\"user\":\"dora\""), "carl got %s",
                  n ? f[0] : "nothing");
    fx_frames_free(f);
    int before = fake_nats.publishes;
    dispatch("meridian.presence.hb", "_INBOX.other.p.hb", "{}");
    ck_assert_int_eq(fake_nats.publishes, before + 1);
    ck_assert_str_eq(fake_nats.publish[before].subject, "_INBOX.other.p.hb");
    ck_assert_ptr_nonnull(strstr(fake_nats.publish[before].body, "\"carl\":1"));
    /* Heartbeats have a subject of their own, which no room name can produce. */
    dispatch(RELAY_SUBJ_HEARTBEAT, NULL, "{\"op\":\"bye\",\"node\":\"" N1 "\"}");
    f = fx_take(carl, &n);
    ck_assert_msg(n == 1 && strstr(f[0], "\"event\":\"leave\",\"user\":\"dora\""), "carl got %s",
                  n ? f[0] : "nothing");
    fx_frames_free(f);
    fx_close(&fx, carl);
}
END_TEST

/*
 * When the relay stops, every session closes at once: each close used to
 * send a leave event to every member still there (frames nobody will read,
 * N² of them: 97 MB queued for 5,000 members of one room) and a NATS delta.
 */
START_TEST(presence_silent_when_the_relay_stops)
{
    fx_discard(alice);
    fx_discard(bob);
    relay_conn *carl = fx_conn(&fx, "carl");
    fx_join(&fx, carl, "r", NULL);
    relay_presence_local(&fx.r, room, "carl", +1, carl);
    fx_discard(alice);
    fx_discard(bob);
    int before = fake_nats.publishes;
    fx.r.destroying = true;
    relay_client_closed(carl);
    free(carl);
    size_t n;
    char **f = fx_take(alice, &n);
    ck_assert_msg(n == 0, "alice got %s", n ? f[0] : "");
    fx_frames_free(f);
    ck_assert_int_eq(fake_nats.publishes, before);
    ck_assert_int_eq(room->member_count, 2);
}
END_TEST

Suite *relay_presence_suite(void)
{
    Suite *s = suite_create("relay_presence");
    TCase *tc = tcase_create("presence");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, presence_totals);
    tcase_add_test(tc, presence_bad_input);
    tcase_add_test(tc, presence_answers_snapshot_queries);
    tcase_add_test(tc, presence_long_node_id_neither_hangs_nor_sticks);
    tcase_add_test(tc, presence_in_a_room_named_hb);
    tcase_add_test(tc, presence_silent_when_the_relay_stops);
    /* A hang is a failure, not a stuck suite. */
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}
