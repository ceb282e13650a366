/*
 * Relay integration tests: a real nats-server and two real relays started
 * per test, driven by raw WebSocket clients so that malformed input can be
 * sent byte for byte. Every wait is a poll with a deadline.
 */
#include "mr_jwt.h"
#include "mr_test.h"
#include "mr_test_relay.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <nats/nats.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mr_test_nats nats;
static mr_test_relay relays[2];
static char *tmp;

static void start_all(const char *limits, const char *extra)
{
    tmp = mr_test_tmpdir("relay");
    /* Core-only mode (jetstream off) runs against a server without JetStream. */
    mr_test_nats_start(&nats, strstr(extra, "\"jetstream\":false") == NULL);
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url, limits, extra);
    mr_test_relay_config(&relays[1], tmp, "test", "relay-2", nats.url, limits, extra);
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
    mr_test_relay_start(&relays[1], MERIDIAN_RELAY_BIN);
}

static void setup(void)
{
    start_all("\"publish_rate\":100000,\"publish_burst\":100000,\"max_outbound_bytes\":67108864",
              "");
}

/* Relays must stop cleanly: under ASan that also proves they leaked nothing. */
static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        mr_test_relay_stop_clean(&relays[i]);
    mr_test_nats_stop(&nats);
}

static void connect_ws(mr_ws *ws, mr_test_relay *rp)
{
    ck_assert_int_eq(mr_ws_connect(ws, "127.0.0.1", rp->port, NULL), 101);
}

START_TEST(fanout_across_relays_exactly_once)
{
    mr_ws a, b, c;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_hello(&c, &relays[0], "carol", NULL);
    mr_test_join(&a, "general");
    mr_test_join(&b, "general");
    mr_test_join(&c, "general");
    /* The ack may come before or after the message itself, so acks are skipped here. */
    mr_test_publish(&a, "general", "m-1", "{\"text\":\"hello\"}");
    mr_test_publish(&a, "general", "m-2", "{\"text\":\"marker\"}");
    mr_ws *members[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        char *m = mr_test_next_message(members[i], 5000);
        ck_assert_msg(m && strstr(m, "\"text\":\"hello\"") && strstr(m, "\"from\":\"alice\"") &&
                          strstr(m, "\"region\":\"test\"") && strstr(m, "\"node\":\"relay-1\""),
                      "member %d got %s", i, m ? m : "nothing");
        free(m);
        /* The very next message must be the marker: no duplicate of the first. */
        m = mr_test_next_message(members[i], 5000);
        ck_assert_msg(m && strstr(m, "marker"), "member %d got %s", i, m ? m : "nothing");
        free(m);
    }
    mr_ws_close(&a);
    mr_ws_close(&b);
    mr_ws_close(&c);
}
END_TEST

/*
 * hello's "echo":false: the publisher gets an ack for each of its publishes
 * and none of its own messages (not from this relay's fast path, not from
 * NATS); every other member, on its relay and on another, still gets each
 * message once, in order, and the publisher still gets the others' messages.
 */
START_TEST(echo_false_leaves_out_only_the_publisher)
{
    enum { N = 50 };
    mr_ws a, b, c;
    connect_ws(&a, &relays[0]);
    char *t = mr_test_token("alice", 3600, NULL);
    char hello[2048];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"token\":\"%s\",\"echo\":false}", t);
    free(t);
    mr_ws_send_text(&a, hello);
    mr_test_expect(&a, "welcome");
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_hello(&c, &relays[0], "carol", NULL);
    mr_test_join(&a, "r");
    mr_test_join(&b, "r");
    mr_test_join(&c, "r");
    for (int i = 0; i < N; i++) {
        char mid[16];
        snprintf(mid, sizeof mid, "e-%d", i);
        mr_test_publish(&a, "r", mid, "1");
    }
    /* Every ack, and none of its messages, comes to the publisher. */
    int acks = 0;
    while (acks < N) {
        char *p = NULL;
        int cc;
        ck_assert_msg(mr_ws_recv(&a, 5000, &p, NULL, &cc) == 1, "%d acks, then nothing", acks);
        /* (Presence events of the others' joins may come too.) */
        ck_assert_msg(!strstr(p, "\"type\":\"message\""), "publisher got %s", p);
        if (strstr(p, "\"type\":\"ack\""))
            acks++;
        free(p);
    }
    mr_ws *others[] = {&b, &c};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N; i++) {
            char want[32];
            snprintf(want, sizeof want, "\"mid\":\"e-%d\"", i);
            char *m = mr_test_next_message(others[k], 5000);
            ck_assert_msg(m && strstr(m, want), "member %d, message %d: %s", k, i, m ? m : "-");
            free(m);
        }
    /* The publisher's next message is carol's: none of its own came late. */
    mr_test_publish(&c, "r", "from-carol", "2");
    char *m = mr_test_next_message(&a, 5000);
    ck_assert_msg(m && strstr(m, "\"mid\":\"from-carol\""), "publisher got %s", m ? m : "-");
    free(m);
    mr_ws_close(&a);
    mr_ws_close(&b);
    mr_ws_close(&c);
}
END_TEST

START_TEST(retried_publish_is_delivered_once)
{
    mr_ws a, b;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&a, "r");
    mr_test_join(&b, "r");
    mr_test_publish(&a, "r", "same", "1");
    mr_test_publish(&a, "r", "same", "1");
    mr_test_publish(&a, "r", "other", "2");
    /* On the publisher's relay too: delivered there at once, its copy from NATS dropped. */
    mr_ws *members[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        char *m = mr_test_next_message(members[i], 5000);
        ck_assert_msg(m && strstr(m, "\"mid\":\"same\""), "member %d got %s", i, m ? m : "-");
        free(m);
        m = mr_test_next_message(members[i], 5000);
        ck_assert_msg(m && strstr(m, "\"mid\":\"other\""), "member %d got %s", i, m ? m : "-");
        free(m);
    }
    ck_assert_int_ge(mr_test_relay_metric(&relays[1], "meridian_relay_duplicates_dropped_total"),
                     1);
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

START_TEST(ten_thousand_in_order)
{
    mr_ws a, b;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&a, "order");
    mr_test_join(&b, "order");
    const int n = 10000;
    char mid[32], data[64];
    for (int i = 0; i < n; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        snprintf(data, sizeof data, "{\"n\":%d}", i);
        mr_test_publish(&a, "order", mid, data);
    }
    for (int i = 0; i < n; i++) {
        char *m = mr_test_next_message(&b, 10000);
        ck_assert_msg(m != NULL, "message %d missing", i);
        char want[64];
        snprintf(want, sizeof want, "\"data\":{\"n\":%d}", i);
        ck_assert_msg(strstr(m, want) != NULL, "message %d out of order: %s", i, m);
        free(m);
    }
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

/*
 * A room big enough that a pass's writes are shared out when send_threads
 * is above 1 (relay_send.h: RELAY_SEND_MIN_SPLIT per thread), and that the
 * relay's array of those writes grows during a pass (1,024 at first) past what malloc keeps in its
 * heap, on one relay: every member gets every message once and in order, whether its frames left
 * from the end of the pass, from a sender thread, or (a burst) from the writable callback.
 */
START_TEST(big_room_in_order_exactly_once)
{
    enum { MEMBERS = 2100, MESSAGES = 40 };
    mr_ws *m = calloc(MEMBERS, sizeof *m);
    mr_ws pub;
    mr_test_hello(&pub, &relays[0], "pub", NULL);
    mr_test_join(&pub, "big");
    for (int i = 0; i < MEMBERS; i++) {
        char user[32];
        snprintf(user, sizeof user, "m%d", i % 7); /* few users: presence stays small */
        mr_test_hello(&m[i], &relays[0], user, NULL);
        mr_test_join(&m[i], "big");
    }
    /* Paced and in bursts: one frame per member per pass, and several. */
    char mid[32], data[64];
    for (int i = 0; i < MESSAGES; i++) {
        snprintf(mid, sizeof mid, "b%d", i);
        snprintf(data, sizeof data, "{\"n\":%d}", i);
        mr_test_publish(&pub, "big", mid, data);
        if (i < MESSAGES / 2)
            mr_test_expect(&pub, "\"type\":\"ack\"");
    }
    for (int k = 0; k < MEMBERS; k++) {
        for (int i = 0; i < MESSAGES; i++) {
            char *f = mr_test_next_message(&m[k], 10000);
            ck_assert_msg(f != NULL, "member %d: message %d missing", k, i);
            char want[64];
            snprintf(want, sizeof want, "\"data\":{\"n\":%d}", i);
            ck_assert_msg(strstr(f, want) != NULL, "member %d: message %d out of order: %s", k, i,
                          f);
            free(f);
        }
    }
    /* Nothing twice: a marker published last is the next message everyone reads. */
    mr_test_publish(&pub, "big", "end", "\"end\"");
    for (int k = 0; k < MEMBERS; k++) {
        char *f = mr_test_next_message(&m[k], 10000);
        ck_assert_msg(f && strstr(f, "\"mid\":\"end\""), "member %d: %s after the last", k,
                      f ? f : "nothing");
        free(f);
        mr_ws_close(&m[k]);
    }
    mr_ws_close(&pub);
    free(m);
}
END_TEST

START_TEST(leave_stops_delivery)
{
    mr_ws a, b;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&a, "r");
    mr_test_join(&b, "r");
    mr_test_join(&b, "other");
    mr_ws_send_text(&b, "{\"type\":\"leave\",\"id\":\"l\",\"room\":\"r\"}");
    mr_test_expect(&b, "\"type\":\"left\"");
    mr_test_publish(&a, "r", "gone", "1");
    mr_test_expect(&a, "\"mid\":\"gone\""); /* the publisher still gets it */
    /* A message in another room proves b is reading and saw nothing from r. */
    mr_test_join(&a, "other");
    mr_test_publish(&a, "other", "still-here", "2");
    char *m = mr_test_next_message(&b, 5000);
    ck_assert_msg(m && strstr(m, "still-here"), "got %s", m ? m : "nothing");
    free(m);
    mr_ws_send_text(&b, "{\"type\":\"leave\",\"id\":\"l2\",\"room\":\"r\"}");
    mr_test_expect(&b, "\"code\":\"not_joined\"");
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

static void expect_error_for(mr_ws *ws, const char *frame, const char *code)
{
    mr_ws_send_text(ws, frame);
    char needle[128];
    snprintf(needle, sizeof needle, "\"code\":\"%s\"", code);
    char *f = mr_ws_expect(ws, "\"type\":\"error\"", 5000);
    ck_assert_msg(f && strstr(f, needle), "%s: want %s, got %s", frame, code, f ? f : "nothing");
    free(f);
}

static void expect_close(mr_ws *ws, int code)
{
    int got = mr_ws_wait_close(ws, 5000);
    ck_assert_msg(got == code, "close code %d, want %d", got, code);
    mr_ws_close(ws);
}

START_TEST(bad_input_gets_documented_errors)
{
    mr_ws w, bystander, other;
    mr_test_hello(&bystander, &relays[0], "bystander", NULL);
    mr_test_join(&bystander, "calm");

    connect_ws(&w, &relays[0]);
    expect_error_for(&w, "{\"type\":\"join\",\"id\":1,\"room\":\"r\"}", "not_authenticated");
    expect_error_for(&w, "not json", "bad_json");
    char *t = mr_test_token("eve", 3600, "[\"team-*\"]");
    char hello[2048];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"token\":\"%s\"}", t);
    free(t);
    mr_ws_send_text(&w, hello);
    mr_test_expect(&w, "welcome");
    expect_error_for(&w, hello, "already_authenticated");
    expect_error_for(&w, "{\"type\":\"fly\"}", "unknown_type");
    expect_error_for(&w, "{\"room\":\"r\"}", "bad_frame");
    expect_error_for(&w, "{\"type\":\"join\"}", "bad_frame");
    expect_error_for(&w, "[]", "bad_frame");
    expect_error_for(&w, "{\"type\":\"publish\",\"room\":\"team-a\"}", "bad_frame");
    expect_error_for(&w, "{\"type\":\"join\",\"room\":\"no spaces\"}", "invalid_room");
    expect_error_for(&w, "{\"type\":\"join\",\"room\":\"general\"}", "forbidden");
    expect_error_for(&w, "{\"type\":\"publish\",\"room\":\"team-a\",\"data\":1}", "not_joined");
    expect_error_for(&w, "{\"type\":\"presence\",\"room\":\"team-a\"}", "not_joined");
    mr_test_join(&w, "team-a");
    mr_ws_send_text(&w, "{\"type\":\"ping\",\"id\":\"p\"}");
    mr_test_expect(&w, "\"type\":\"pong\",\"id\":\"p\"");

    /* Binary frames close with 1003. */
    mr_ws_send_frame(&w, 2, "abc", 3);
    expect_close(&w, 1003);

    /* Oversize frames close with 1009. */
    mr_test_hello(&w, &relays[0], "eve", NULL);
    size_t big = 70000;
    char *huge = malloc(big + 64);
    int n = snprintf(huge, big + 64, "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"");
    memset(huge + n, 'x', big);
    strcpy(huge + n + big, "\"}");
    mr_ws_send_text(&w, huge);
    free(huge);
    expect_close(&w, 1009);

    /* A bad, an expired and a wrongly signed token: auth_failed, then 4001. */
    const char *bad_tokens[3];
    char *expired = mr_test_token("eve", -3600, NULL);
    bad_tokens[0] = "not-a-token";
    bad_tokens[1] = expired;
    bad_tokens[2] = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJldmUiLCJleHAiOjk5OTk5OTk5OTl9.";
    for (int i = 0; i < 3; i++) {
        connect_ws(&w, &relays[0]);
        snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"id\":7,\"token\":\"%s\"}",
                 bad_tokens[i]);
        expect_error_for(&w, hello, "auth_failed");
        expect_close(&w, 4001);
    }
    free(expired);

    /* Too many invalid frames close with 4009. */
    mr_test_hello(&w, &relays[0], "eve", NULL);
    for (int i = 0; i < 25; i++)
        mr_ws_send_text(&w, "{\"type\":\"nope\"}");
    expect_close(&w, 4009);

    /* Everyone else is still served. */
    mr_test_hello(&other, &relays[0], "other", NULL);
    mr_test_join(&other, "calm");
    mr_test_publish(&other, "calm", "ok", "\"still fine\"");
    char *m = mr_test_next_message(&bystander, 5000);
    ck_assert_msg(m && strstr(m, "still fine"), "bystander got %s", m ? m : "nothing");
    free(m);
    ck_assert_int_ge(mr_test_relay_metric(&relays[0], "meridian_relay_auth_failures_total"), 3);
    mr_ws_close(&bystander);
    mr_ws_close(&other);
}
END_TEST

static void setup_strict(void)
{
    /* The smallest useful receive buffer: a flood is read 256 bytes per loop pass. */
    start_all("\"publish_rate\":5,\"publish_burst\":5,\"rate_limit_strikes\":20,"
              "\"handshake_timeout_ms\":400,\"max_rooms_per_connection\":2,"
              "\"receive_buffer_bytes\":256",
              "");
}

static void setup_idle(void)
{
    start_all("\"ping_interval_s\":1,\"idle_timeout_s\":2", "");
}

START_TEST(idle_connection_without_pongs_is_dropped)
{
    mr_ws w, live;
    mr_test_hello(&w, &relays[0], "sleepy", NULL);
    mr_test_hello(&live, &relays[0], "awake", NULL);
    /* Read raw bytes without answering pings, until the relay hangs up. */
    int64_t t0 = mr_test_now_ms(), closed_at = -1;
    while (mr_test_now_ms() - t0 < 10000) {
        struct pollfd p = {w.fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            char buf[512];
            ssize_t n = read(w.fd, buf, sizeof buf);
            if (n <= 0) {
                closed_at = mr_test_now_ms();
                break;
            }
        }
        /* The other client answers pings (mr_ws_recv does) and must stay. */
        char *f;
        int cc;
        if (mr_ws_recv(&live, 1, &f, NULL, &cc) >= 0)
            free(f);
    }
    ck_assert_msg(closed_at > 0, "the silent connection was never dropped");
    ck_assert_int_ge(closed_at - t0, 1000);
    mr_ws_send_text(&live, "{\"type\":\"ping\",\"id\":1}");
    mr_test_expect(&live, "\"type\":\"pong\"");
    mr_ws_close(&w);
    mr_ws_close(&live);
}
END_TEST

START_TEST(expired_token_closes_with_4010)
{
    mr_ws w;
    ck_assert_int_eq(mr_ws_connect(&w, "127.0.0.1", relays[0].port, NULL), 101);
    /* Valid for one more second; the relay allows auth.leeway_s (5 s) of skew. */
    char *t = mr_test_token("brief", 1, NULL);
    char hello[2048];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"token\":\"%s\"}", t);
    free(t);
    mr_ws_send_text(&w, hello);
    mr_test_expect(&w, "\"type\":\"welcome\"");
    int code = mr_ws_wait_close(&w, 15000);
    ck_assert_msg(code == 4010, "close code %d, want 4010", code);
    mr_ws_close(&w);
}
END_TEST

/*
 * Tokens whose `exp` is absurdly far: 9.3e12 s overflowed the microseconds
 * of the expiry timer, 1e19 s does not fit an int64_t (undefined behaviour:
 * on x86 it became INT64_MIN, so a valid token closed at once with 4010).
 * Either way the session lives and answers.
 */
START_TEST(far_future_exp_keeps_the_session)
{
    static const char *const exps[] = {"9300000000000", "1e19", "9223372036854775807"};
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++) {
        char claims[128];
        snprintf(claims, sizeof claims, "{\"sub\":\"far\",\"exp\":%s}", exps[i]);
        json_t *c = json_loads(claims, 0, NULL);
        char *t = mr_jwt_sign((const unsigned char *)MR_TEST_SECRET, strlen(MR_TEST_SECRET), c);
        json_decref(c);
        mr_ws w;
        connect_ws(&w, &relays[0]);
        char hello[2048];
        snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"token\":\"%s\"}", t);
        free(t);
        mr_ws_send_text(&w, hello);
        mr_test_expect(&w, "\"type\":\"welcome\"");
        /* Long enough for a timer armed in the past to fire many times. */
        char *f = mr_ws_expect(&w, "\"type\"", 1500);
        ck_assert_msg(f == NULL, "exp %s: unexpected %s", exps[i], f);
        mr_ws_send_text(&w, "{\"type\":\"ping\",\"id\":1}");
        f = mr_ws_expect(&w, "\"type\":\"pong\"", 5000);
        ck_assert_msg(f != NULL, "exp %s: the session is gone", exps[i]);
        free(f);
        mr_ws_close(&w);
    }
}
END_TEST

/*
 * Joining a room new on this relay does not block the relay while NATS is
 * slow to confirm the subscription: with the server stopped, a ping sent
 * after the join is answered first, and the join fails with `unavailable`
 * when the confirmation does not come; once NATS is back, joins work.
 */
START_TEST(join_waits_for_nats_without_blocking_the_relay)
{
    mr_ws w;
    mr_test_hello(&w, &relays[0], "alice", NULL);
    mr_test_join(&w, "before");
    mr_test_stop_process(nats.pid);
    mr_ws_send_text(&w, "{\"type\":\"join\",\"id\":\"slow\",\"room\":\"new-room\"}");
    mr_ws_send_text(&w, "{\"type\":\"ping\",\"id\":\"p\"}");
    char *f = mr_ws_expect(&w, "\"type\"", 10000);
    bool pong_first = f && strstr(f, "\"type\":\"pong\"");
    char *join_reply = pong_first ? mr_ws_expect(&w, "\"id\":\"slow\"", 10000) : f;
    kill(nats.pid, SIGCONT);
    ck_assert_msg(pong_first, "the join's answer came before the ping's: %s", f ? f : "nothing");
    free(f);
    ck_assert_msg(join_reply && strstr(join_reply, "\"code\":\"unavailable\""),
                  "join without NATS: %s", join_reply ? join_reply : "nothing");
    free(join_reply);
    /* The room is not joined, and joining again works now. */
    expect_error_for(&w, "{\"type\":\"leave\",\"room\":\"new-room\"}", "not_joined");
    mr_test_join(&w, "new-room");
    mr_ws_close(&w);
}
END_TEST

/* Poll `rp`'s /readyz until it answers `want` or `timeout_ms` passes; the last status and body. */
static int poll_ready(mr_test_relay *rp, int want, int timeout_ms, char **body)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        int status = mr_test_http_get("127.0.0.1", rp->admin_port, "/readyz", body);
        if (status == want || mr_test_now_ms() >= deadline)
            return status;
        free(*body);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/*
 * A server that stops answering while its TCP connection stays open
 * (SIGSTOP here; in production nats-server 2.9 wedged by a full disk under
 * its JetStream store) makes the relay not ready, saying why, within a few
 * seconds, and ready again once the server answers: health agents must
 * see a region whose NATS does not work.
 */
START_TEST(unresponsive_nats_makes_the_relay_unready)
{
    char *body = NULL;
    ck_assert_int_eq(poll_ready(&relays[0], 200, 5000, &body), 200);
    free(body);
    kill(nats.pid, SIGSTOP);
    int down = poll_ready(&relays[0], 503, 15000, &body);
    kill(nats.pid, SIGCONT);
    ck_assert_msg(down == 503, "/readyz with the server stopped: %d %s", down, body);
    ck_assert_msg(strstr(body, "\"nats\":\"unresponsive\"") &&
                      strstr(body, "\"nats_error\":\"no answer from the server for"),
                  "%s", body);
    free(body);
    int up = poll_ready(&relays[0], 200, 15000, &body);
    ck_assert_msg(up == 200, "/readyz once the server answers again: %d %s", up, body);
    ck_assert_msg(strstr(body, "\"nats\":\"connected\""), "%s", body);
    free(body);
    /* And it works: a member still gets messages. */
    mr_ws a;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_join(&a, "after-stop");
    mr_test_publish(&a, "after-stop", "m1", "1");
    char *m = mr_test_next_message(&a, 10000);
    ck_assert_msg(m != NULL, "no delivery after the server answered again");
    free(m);
    mr_ws_close(&a);
}
END_TEST

/* Lines of `path` holding both needles. */
static int log_lines(const char *path, const char *a, const char *b)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, a) && strstr(line, b);
    (void)fclose(f); /* opened to read only */
    return n;
}

static void setup_slow(void)
{
    start_all("\"publish_rate\":100000,\"publish_burst\":100000,\"max_outbound_bytes\":262144", "");
}

/* The same, with a pass's writes shared by two sender threads (relay_send.c). */
static void setup_slow_threads(void)
{
    start_all("\"publish_rate\":100000,\"publish_burst\":100000,\"max_outbound_bytes\":262144",
              "\"send_threads\":2");
}

/* lws on a libuv loop (epoll) instead of poll(). */
static void setup_uv(void)
{
    start_all("\"publish_rate\":100000,\"publish_burst\":100000,\"max_outbound_bytes\":67108864",
              "\"event_loop\":\"libuv\"");
}

static void setup_slow_uv(void)
{
    start_all("\"publish_rate\":100000,\"publish_burst\":100000,\"max_outbound_bytes\":262144",
              "\"event_loop\":\"libuv\"");
}

static void setup_threads(void)
{
    start_all("\"publish_rate\":100000,\"publish_burst\":100000,\"max_outbound_bytes\":67108864",
              "\"send_threads\":2");
}

START_TEST(flood_is_rate_limited_then_closed)
{
    mr_ws w;
    mr_test_hello(&w, &relays[0], "flooder", NULL);
    mr_test_join(&w, "r");
    for (int i = 0; i < 5; i++) {
        char mid[16];
        snprintf(mid, sizeof mid, "f%d", i);
        mr_test_publish(&w, "r", mid, "1");
        mr_test_expect(&w, "\"type\":\"ack\"");
    }
    mr_test_publish(&w, "r", "over", "1");
    char *f = mr_ws_expect(&w, "\"type\":\"error\"", 5000);
    ck_assert_msg(f && strstr(f, "rate_limited") && strstr(f, "\"retryable\":true"), "%s",
                  f ? f : "-");
    free(f);
    /* The relay closes the connection part-way: later sends may fail, which is fine. */
    for (int i = 0; i < 40; i++)
        mr_ws_send_text(&w, "{\"type\":\"publish\",\"room\":\"r\",\"mid\":\"flood\",\"data\":1}");
    expect_close(&w, 4029);
}
END_TEST

START_TEST(hello_timeout_and_room_limit)
{
    mr_ws w;
    connect_ws(&w, &relays[0]);
    int64_t t0 = mr_test_now_ms();
    expect_close(&w, 4002);
    ck_assert_int_lt(mr_test_now_ms() - t0, 4000);
    mr_test_hello(&w, &relays[0], "alice", NULL);
    mr_test_join(&w, "a");
    mr_test_join(&w, "b");
    expect_error_for(&w, "{\"type\":\"join\",\"room\":\"c\"}", "too_many_rooms");
    mr_ws_close(&w);
}
END_TEST

START_TEST(slow_consumer_is_cut_off)
{
    mr_ws pub, slow, stuck, fast;
    mr_test_hello(&pub, &relays[0], "pub", NULL);
    mr_test_hello(&slow, &relays[1], "slow", NULL);
    mr_test_hello(&stuck, &relays[1], "stuck", NULL);
    mr_test_hello(&fast, &relays[1], "fast", NULL);
    mr_test_join(&pub, "big");
    mr_test_join(&slow, "big");
    mr_test_join(&stuck, "big");
    mr_test_join(&fast, "big");
    /*
     * 60 KB payloads: the slow and stuck members do not read, so kernel buffers fill, then
     * their queues. Slow reads once it is cut off; stuck never does.
     */
    char *data = malloc(61000);
    data[0] = '"';
    memset(data + 1, 'y', 60000);
    strcpy(data + 60001, "\"");
    int received = 0;
    int64_t deadline = mr_test_now_ms() + 60000;
    for (int i = 0;
         mr_test_relay_metric(&relays[1], "meridian_relay_slow_consumer_closes_total") < 2; i++) {
        ck_assert_msg(mr_test_now_ms() < deadline, "slow consumer never cut off");
        char mid[16];
        snprintf(mid, sizeof mid, "b%d", i);
        mr_test_publish(&pub, "big", mid, data);
        char *m = mr_ws_expect(&pub, "\"type\":\"ack\"", 5000);
        ck_assert_msg(m != NULL, "publish %d not acknowledged", i);
        free(m);
        char *f = mr_test_next_message(&fast, 5000);
        ck_assert_msg(f != NULL, "fast member stopped receiving at %d", i);
        free(f);
        received++;
    }
    free(data);
    /* The slow member finds a 4008 close after whatever the kernel buffered. */
    int code = 0;
    for (;;) {
        char *p;
        int op = mr_ws_recv(&slow, 5000, &p, NULL, &code);
        ck_assert_msg(op >= 0, "no close frame for the slow consumer");
        free(p);
        if (op == 8)
            break;
    }
    ck_assert_int_eq(code, 4008);
    mr_ws_close(&slow);
    /* Stuck never takes its close frame; the relay does not wait for it forever. */
    int64_t stuck_deadline = mr_test_now_ms() + 15000;
    while (mr_test_relay_metric(&relays[1], "meridian_relay_connections") > 1) {
        ck_assert_msg(mr_test_now_ms() < stuck_deadline, "a client that never reads stays open");
        usleep(50 * 1000); /* between polls of the gauge */
    }
    mr_ws_close(&stuck);
    /* And the fast member keeps receiving. */
    mr_test_publish(&pub, "big", "after", "\"after\"");
    char *m = mr_test_next_message(&fast, 5000);
    ck_assert_msg(m && strstr(m, "after"), "fast member got %s", m ? m : "nothing");
    free(m);
    ck_assert_int_gt(received, 0);
    /* Each close is logged once, with the session's user and the room. */
    ck_assert_int_eq(log_lines(relays[1].log, "(user slow,", "slow consumer"), 1);
    ck_assert_int_eq(log_lines(relays[1].log, "(user stuck,", "slow consumer"), 1);
    ck_assert_int_eq(log_lines(relays[1].log, "slow consumer", "for room big"), 2);
    mr_ws_close(&pub);
    mr_ws_close(&fast);
}
END_TEST

START_TEST(presence_on_this_relay)
{
    mr_ws a, b;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&b, &relays[0], "bob", NULL);
    mr_test_join(&a, "p");
    mr_test_join(&b, "p");
    mr_test_expect(&a, "\"event\":\"join\",\"user\":\"bob\"");
    mr_ws_send_text(&a, "{\"type\":\"presence\",\"id\":9,\"room\":\"p\"}");
    char *f = mr_ws_expect(&a, "\"members\"", 5000);
    ck_assert_msg(f && strstr(f, "\"user\":\"alice\"") && strstr(f, "\"user\":\"bob\""), "%s",
                  f ? f : "-");
    free(f);
    mr_ws_close(&b);
    mr_test_expect(&a, "\"event\":\"leave\",\"user\":\"bob\"");
    mr_ws_close(&a);
}
END_TEST

START_TEST(nats_restart_resumes_delivery)
{
    mr_ws a, b;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&a, "r");
    mr_test_join(&b, "r");
    mr_test_nats_stop(&nats);
    mr_test_relay_wait_ready(&relays[0], 503, 10000);
    char *body;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", relays[0].admin_port, "/readyz", &body), 503);
    ck_assert_msg(strstr(body, "\"nats\":\"disconnected\""), "%s", body);
    free(body);
    mr_test_publish(&a, "r", "down", "1");
    char *f = mr_ws_expect(&a, "\"type\":\"error\"", 5000);
    ck_assert_msg(f && strstr(f, "unavailable") && strstr(f, "\"retryable\":true"), "%s",
                  f ? f : "-");
    free(f);
    mr_test_nats_restart(&nats);
    mr_test_relay_wait_ready(&relays[0], 200, 20000);
    mr_test_relay_wait_ready(&relays[1], 200, 20000);
    /* Retry until the resubscription is in place on the other relay. */
    int64_t deadline = mr_test_now_ms() + 20000;
    char *m = NULL;
    for (int i = 0; !m && mr_test_now_ms() < deadline; i++) {
        char mid[16];
        snprintf(mid, sizeof mid, "up%d", i);
        mr_test_publish(&a, "r", mid, "2");
        m = mr_test_next_message(&b, 500);
    }
    ck_assert_msg(m != NULL, "no delivery after NATS came back");
    free(m);
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

START_TEST(sigterm_drains)
{
    mr_ws a;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_join(&a, "r");
    kill(relays[0].pid, SIGTERM);
    mr_test_expect(&a, "\"type\":\"reconnect\"");
    mr_test_relay_wait_ready(&relays[0], 503, 5000);
    mr_ws late;
    ck_assert_int_ne(mr_ws_connect(&late, "127.0.0.1", relays[0].port, NULL), 101);
    mr_ws_close(&late);
    expect_close(&a, 1012);
    int st = mr_test_wait_exit(relays[0].pid, 10000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay exit status %d", st);
    relays[0].pid = 0;
}
END_TEST

static void setup_presence(void)
{
    start_all("", "\"presence\":{\"heartbeat_ms\":200,\"expire_heartbeats\":3}");
}

START_TEST(presence_across_relays_and_no_zombies)
{
    mr_ws a, b, c;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_join(&a, "p");
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&b, "p");
    /* alice learns that bob, on the other relay, joined; bob's snapshot lists alice. */
    mr_test_expect(&a, "\"event\":\"join\",\"user\":\"bob\"");
    int64_t deadline = mr_test_now_ms() + 5000;
    bool both = false;
    while (!both && mr_test_now_ms() < deadline) {
        mr_ws_send_text(&b, "{\"type\":\"presence\",\"id\":3,\"room\":\"p\"}");
        char *f = mr_ws_expect(&b, "\"members\"", 5000);
        both = f && strstr(f, "\"user\":\"alice\"") && strstr(f, "\"user\":\"bob\"");
        free(f);
    }
    ck_assert_msg(both, "bob never saw alice in presence");
    /* A second session of bob elsewhere is not a new join; leaving one is not a leave. */
    mr_test_hello(&c, &relays[0], "bob", NULL);
    mr_test_join(&c, "p");
    mr_ws_close(&c);
    /* bob's relay dies without a word: alice sees him leave within a few heartbeats. */
    kill(relays[1].pid, SIGKILL);
    mr_test_wait_exit(relays[1].pid, 5000);
    relays[1].pid = 0;
    int64_t t0 = mr_test_now_ms();
    char *f = mr_ws_expect(&a, "\"event\":\"leave\",\"user\":\"bob\"", 5000);
    ck_assert_msg(f != NULL, "bob stayed a zombie member");
    free(f);
    ck_assert_int_lt(mr_test_now_ms() - t0, 3000);
    mr_ws_send_text(&a, "{\"type\":\"presence\",\"id\":4,\"room\":\"p\"}");
    f = mr_ws_expect(&a, "\"members\"", 5000);
    ck_assert_msg(f && !strstr(f, "bob"), "%s", f ? f : "-");
    free(f);
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

static void setup_admin_drain(void)
{
    start_all("\"max_connections_per_ip\":0",
              "\"admin_api_key\":\"drain-key-0123456789\",\"drain_batch\":1,"
              "\"fallback_urls\":[\"ws://fallback.example:17100/\"]");
}

START_TEST(admin_drain_moves_clients_and_undrain_restores)
{
    mr_ws a, b;
    ck_assert_int_eq(mr_ws_connect(&a, "127.0.0.1", relays[0].port, NULL), 101);
    char *t = mr_test_token("alice", 3600, NULL);
    char hello[2048];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"token\":\"%s\"}", t);
    free(t);
    mr_ws_send_text(&a, hello);
    /* welcome offers the configured fallback URLs. */
    mr_test_expect(&a, "\"fallback\":[\"ws://fallback.example:17100/\"]");
    mr_test_hello(&b, &relays[0], "bob", NULL);
    char *body;
    ck_assert_int_eq(
        mr_test_http("127.0.0.1", relays[0].admin_port, "POST", "/v1/drain", NULL, "{}", &body),
        401);
    free(body);
    ck_assert_int_eq(mr_test_http("127.0.0.1", relays[0].admin_port, "POST", "/v1/drain",
                                  "Authorization: Bearer drain-key-0123456789\r\n",
                                  "{\"urls\":", &body),
                     400);
    free(body);
    ck_assert_int_eq(mr_test_http("127.0.0.1", relays[0].admin_port, "POST", "/v1/drain",
                                  "Authorization: Bearer drain-key-0123456789\r\n",
                                  "{\"urls\":[\"ws://127.2.0.1:17100/\"]}", &body),
                     202);
    free(body);
    /* Both clients are told where to go (one per batch), then closed with 1012. */
    mr_test_expect(
        &a, "\"type\":\"reconnect\",\"reason\":\"draining\",\"urls\":[\"ws://127.2.0.1:17100/\"]");
    mr_test_expect(&b, "\"urls\":[\"ws://127.2.0.1:17100/\"]");
    mr_test_relay_wait_ready(&relays[0], 503, 5000);
    mr_ws late;
    ck_assert_int_ne(mr_ws_connect(&late, "127.0.0.1", relays[0].port, NULL), 101);
    mr_ws_close(&late);
    expect_close(&a, 1012);
    expect_close(&b, 1012);
    /* An admin drain does not stop the process; undrain takes it back into service. */
    ck_assert(mr_test_alive(relays[0].pid));
    ck_assert_int_eq(mr_test_http("127.0.0.1", relays[0].admin_port, "POST", "/v1/undrain",
                                  "Authorization: Bearer drain-key-0123456789\r\n", NULL, &body),
                     202);
    free(body);
    mr_test_relay_wait_ready(&relays[0], 200, 5000);
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_join(&a, "back");
    mr_ws_close(&a);
}
END_TEST

static void setup_origin(void)
{
    start_all("\"max_connections_per_ip\":3",
              "\"origins\":[\"https://chat.example\"],\"jetstream\":false");
}

START_TEST(origin_allowlist_and_per_ip_limit)
{
    mr_ws w[4];
    ck_assert_int_ne(
        mr_ws_connect(&w[0], "127.0.0.1", relays[0].port, "Origin: https://evil.example\r\n"), 101);
    mr_ws_close(&w[0]);
    ck_assert_int_eq(
        mr_ws_connect(&w[0], "127.0.0.1", relays[0].port, "Origin: https://chat.example\r\n"), 101);
    ck_assert_int_eq(mr_ws_connect(&w[1], "127.0.0.1", relays[0].port, NULL), 101);
    ck_assert_int_eq(mr_ws_connect(&w[2], "127.0.0.1", relays[0].port, NULL), 101);
    ck_assert_int_ne(mr_ws_connect(&w[3], "127.0.0.1", relays[0].port, NULL), 101);
    mr_ws_close(&w[3]);
    mr_ws_close(&w[2]);
    /* The slot frees up once the server has seen the close. */
    int64_t deadline = mr_test_now_ms() + 5000;
    int status = 0;
    while (status != 101 && mr_test_now_ms() < deadline) {
        status = mr_ws_connect(&w[2], "127.0.0.1", relays[0].port, NULL);
        if (status != 101)
            mr_ws_close(&w[2]);
    }
    ck_assert_int_eq(status, 101);
    for (int i = 0; i < 3; i++)
        mr_ws_close(&w[i]);
    ck_assert_int_ge(mr_test_relay_metric(&relays[0], "meridian_relay_rejected_upgrades_total"), 2);
}
END_TEST

static char tls_dir[512];

static void setup_tls(void)
{
    tmp = mr_test_tmpdir("relaytls");
    snprintf(tls_dir, sizeof tls_dir, "%s", tmp);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/cert.pem "
             "-days 2 -subj /CN=localhost >/dev/null 2>&1 && mkdir -p %s/www && echo hi > "
             "%s/www/index.html",
             tmp, tmp, tmp, tmp);
    ck_assert_msg(system(cmd) == 0, "openssl could not make a certificate");
    mr_test_nats_start(&nats, true);
    char extra[1024];
    snprintf(extra, sizeof extra,
             "\"tls\":{\"cert\":\"%s/cert.pem\",\"key\":\"%s/key.pem\",\"hsts_max_age\":600,"
             "\"ciphersuites\":\"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256\"},"
             "\"static_dir\":\"%s/www\"",
             tmp, tmp, tmp);
    mr_test_relay_config(&relays[0], tmp, "test", "tls-relay", nats.url, "", extra);
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
    /* The second relay keeps the default suites. */
    snprintf(extra, sizeof extra, "\"tls\":{\"cert\":\"%s/cert.pem\",\"key\":\"%s/key.pem\"}", tmp,
             tmp);
    mr_test_relay_config(&relays[1], tmp, "test", "tls-default", nats.url, "", extra);
    mr_test_relay_start(&relays[1], MERIDIAN_RELAY_BIN);
}

/* A TLS connection; `suites` is the client's TLS 1.3 order (NULL: OpenSSL's, AES-256-GCM first). */
static int tls_connect(int port, int max_version, const char *suites, SSL **out_ssl,
                       SSL_CTX **out_ctx, int *out_fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx, max_version);
    if (suites)
        ck_assert_int_eq(SSL_CTX_set_ciphersuites(ctx, suites), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    int rc = SSL_connect(ssl);
    *out_ssl = ssl;
    *out_ctx = ctx;
    *out_fd = fd;
    return rc;
}

START_TEST(tls13_only_with_hsts)
{
    SSL *ssl;
    SSL_CTX *ctx;
    int fd;
    ck_assert_int_ne(tls_connect(relays[0].port, TLS1_2_VERSION, NULL, &ssl, &ctx, &fd), 1);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ck_assert_int_eq(tls_connect(relays[0].port, TLS1_3_VERSION, NULL, &ssl, &ctx, &fd), 1);
    ck_assert_int_eq(SSL_version(ssl), TLS1_3_VERSION);
    /* The configured order wins over OpenSSL's client order (AES-GCM first). */
    ck_assert_str_eq(SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)),
                     "TLS_CHACHA20_POLY1305_SHA256");
    const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    SSL_write(ssl, req, sizeof req - 1);
    char resp[4096];
    int n = 0, r;
    while (n < (int)sizeof resp - 1 && (r = SSL_read(ssl, resp + n, (int)sizeof resp - 1 - n)) > 0)
        n += r;
    resp[n] = '\0';
    ck_assert_msg(strstr(resp, "200") != NULL, "%s", resp);
    ck_assert_msg(strcasestr(resp, "strict-transport-security: max-age=600") != NULL, "%s", resp);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}
END_TEST

/* The cipher suite a TLS 1.3 client with the order `suites` gets from `rp`. */
static char *negotiated_suite(mr_test_relay *rp, const char *suites)
{
    SSL *ssl;
    SSL_CTX *ctx;
    int fd;
    ck_assert_int_eq(tls_connect(rp->port, TLS1_3_VERSION, suites, &ssl, &ctx, &fd), 1);
    char *name = strdup(SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return name;
}

START_TEST(default_suites_prefer_aes128_and_chacha20_for_clients_that_ask)
{
    const struct {
        const char *client, *want;
    } cases[] = {
        {NULL, "TLS_AES_128_GCM_SHA256"}, /* OpenSSL's client order asks for AES-256 first */
        {"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
        {"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = negotiated_suite(&relays[1], cases[i].client);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "client %s: got %s, want %s",
                      cases[i].client ? cases[i].client : "(default)", got, cases[i].want);
        free(got);
    }
}
END_TEST

static void teardown_tls(void)
{
    teardown();
}

/* hello with `token`, wait for welcome. */
static void hello_with(mr_ws *w, mr_test_relay *rp, char *token)
{
    connect_ws(w, rp);
    char hello[2048];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"token\":\"%s\"}", token);
    free(token);
    mr_ws_send_text(w, hello);
    mr_test_expect(w, "\"type\":\"welcome\"");
}

static void send_refresh(mr_ws *w, const char *id, char *token)
{
    char frame[2048];
    snprintf(frame, sizeof frame, "{\"type\":\"refresh\",\"id\":\"%s\",\"token\":\"%s\"}", id,
             token);
    free(token);
    mr_ws_send_text(w, frame);
}

/*
 * Issue 16 §1: a session whose token expires in 2 s is hinted with
 * refresh_due, refreshes with a token whose rooms claim drops one of its
 * rooms (left with reason), and lives on past the first token's expiry and
 * leeway, still getting messages.
 */
START_TEST(refresh_keeps_the_session_past_the_first_expiry)
{
    mr_ws w, pub;
    hello_with(&w, &relays[0], mr_test_token("renewer", 2, NULL));
    mr_test_join(&w, "team-x");
    mr_test_join(&w, "other");
    char *f = mr_ws_expect(&w, "\"type\":\"refresh_due\"", 5000);
    ck_assert_msg(f != NULL, "no refresh_due before the expiry");
    free(f);
    send_refresh(&w, "r1", mr_test_token("renewer", 3600, "[\"team-*\"]"));
    f = mr_ws_expect(&w, "\"type\":\"refreshed\"", 5000);
    ck_assert_msg(f && strstr(f, "\"id\":\"r1\""), "%s", f ? f : "no refreshed");
    free(f);
    f = mr_ws_expect(&w, "\"type\":\"left\"", 5000);
    ck_assert_msg(f && strstr(f, "\"room\":\"other\"") && strstr(f, "\"reason\":\"forbidden\""),
                  "%s", f ? f : "no left");
    free(f);
    /* Past the first token's exp + leeway (5 s): no 4010. */
    f = mr_ws_expect(&w, "\"type\"", 8000);
    ck_assert_msg(f == NULL, "unexpected %s", f);
    mr_test_hello(&pub, &relays[1], "talker", NULL);
    mr_test_join(&pub, "team-x");
    mr_test_publish(&pub, "team-x", "after-refresh", "1");
    char *m = mr_test_next_message(&w, 5000);
    ck_assert_msg(m && strstr(m, "after-refresh"), "%s", m ? m : "no message");
    free(m);
    mr_ws_close(&pub);
    mr_ws_close(&w);
}
END_TEST

/* A token of another user is refused: the session keeps its own, and ends with 4010 at its exp. */
START_TEST(refresh_for_another_user_is_refused)
{
    mr_ws w;
    hello_with(&w, &relays[0], mr_test_token("owner", 1, NULL));
    send_refresh(&w, "r1", mr_test_token("intruder", 3600, NULL));
    char *f = mr_ws_expect(&w, "\"code\":\"user_mismatch\"", 5000);
    ck_assert_msg(f && strstr(f, "\"id\":\"r1\""), "%s", f ? f : "no user_mismatch");
    free(f);
    int code = mr_ws_wait_close(&w, 15000);
    ck_assert_msg(code == 4010, "close code %d, want 4010", code);
    mr_ws_close(&w);
}
END_TEST

/*
 * Issue 16 §3: a signal reaches the room's members on both relays (the
 * sender's other session too) and not the sender; nothing is published to
 * JetStream and no ack comes.
 */
START_TEST(signal_reaches_members_on_every_relay_over_core_nats)
{
    mr_ws a, a2, b, c;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&a2, &relays[1], "alice", NULL);
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_hello(&c, &relays[0], "carol", NULL);
    mr_ws *all[] = {&a, &a2, &b, &c};
    for (int i = 0; i < 4; i++) {
        char join[128];
        snprintf(join, sizeof join,
                 "{\"type\":\"join\",\"id\":\"j\",\"room\":\"sig\",\"presence\":false}");
        mr_ws_send_text(all[i], join);
        mr_test_expect(all[i], "\"type\":\"joined\"");
    }
    mr_ws_send_text(
        &a, "{\"type\":\"signal\",\"id\":\"s1\",\"room\":\"sig\",\"data\":{\"typing\":true}}");
    mr_ws_send_text(&a, "{\"type\":\"ping\",\"id\":\"p\"}");
    for (int i = 1; i < 4; i++) {
        char *f = mr_ws_expect(all[i], "\"type\":\"signal\"", 5000);
        ck_assert_msg(f && strstr(f, "\"from\":\"alice\"") && strstr(f, "{\"typing\":true}") &&
                          strstr(f, "\"region\":\"test\""),
                      "member %d: %s", i, f ? f : "no signal");
        free(f);
    }
    /* The sender's next frame is the pong: no ack, no echo. */
    char *p;
    int cc;
    ck_assert_int_eq(mr_ws_recv(&a, 5000, &p, NULL, &cc), 1);
    ck_assert_msg(strstr(p, "\"type\":\"pong\""), "%s", p);
    free(p);
    ck_assert_int_eq(mr_test_relay_metric(&relays[0], "meridian_relay_signals_total"), 1);
    ck_assert_int_eq(mr_test_relay_metric(&relays[0], "meridian_relay_publishes_total"), 0);
    ck_assert_int_eq(mr_test_relay_metric(&relays[1], "meridian_relay_signals_delivered_total"), 2);
    /* Nothing went to the region's stream. */
    natsConnection *nc = NULL;
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, nats.url), NATS_OK);
    jsCtx *js = NULL;
    ck_assert_int_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    ck_assert_int_eq(js_GetStreamInfo(&si, js, "MERIDIAN_TEST", NULL, &jerr), NATS_OK);
    ck_assert_uint_eq(si->State.Msgs, 0);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    for (int i = 0; i < 4; i++)
        mr_ws_close(all[i]);
}
END_TEST

/*
 * The JavaScript SDK with getToken() against this relay: 3-second tokens,
 * one session for 12 s (tests/relay/sdk_refresh_client.mjs).
 */
START_TEST(sdk_get_token_refreshes_without_reconnecting)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "node %s/sdk_refresh_client.mjs ws://127.0.0.1:%d/ %s",
             MERIDIAN_TEST_SOURCE_DIR, relays[0].port, MR_TEST_SECRET);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024] = "";
    char *got = fgets(line, sizeof line, f);
    int st = pclose(f);
    ck_assert_msg(got && st == 0, "SDK client failed (status %d): %s", st, line);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay_integration");
    TCase *tc = mr_test_case(s, "two_relays", setup, teardown, 120);
    tcase_add_test(tc, fanout_across_relays_exactly_once);
    tcase_add_test(tc, retried_publish_is_delivered_once);
    tcase_add_test(tc, echo_false_leaves_out_only_the_publisher);
    tcase_add_test(tc, ten_thousand_in_order);
    tcase_add_test(tc, big_room_in_order_exactly_once);
    tcase_add_test(tc, leave_stops_delivery);
    tcase_add_test(tc, bad_input_gets_documented_errors);
    tcase_add_test(tc, presence_on_this_relay);
    tcase_add_test(tc, nats_restart_resumes_delivery);
    tcase_add_test(tc, sigterm_drains);
    tcase_add_test(tc, far_future_exp_keeps_the_session);
    tcase_add_test(tc, join_waits_for_nats_without_blocking_the_relay);
    tcase_add_test(tc, unresponsive_nats_makes_the_relay_unready);

    TCase *strict = mr_test_case(s, "strict_limits", setup_strict, teardown, 120);
    tcase_add_test(strict, flood_is_rate_limited_then_closed);
    tcase_add_test(strict, hello_timeout_and_room_limit);

    TCase *idle = mr_test_case(s, "idle_timeout", setup_idle, teardown, 60);
    tcase_add_test(idle, idle_connection_without_pongs_is_dropped);
    tcase_add_test(idle, expired_token_closes_with_4010);

    TCase *slow = mr_test_case(s, "slow_consumer", setup_slow, teardown, 120);
    tcase_add_test(slow, slow_consumer_is_cut_off);

    /* Sender threads: order, once, slow consumers and a clean stop (the teardown). */
    TCase *threads = mr_test_case(s, "send_threads", setup_threads, teardown, 120);
    tcase_add_test(threads, fanout_across_relays_exactly_once);
    tcase_add_test(threads, ten_thousand_in_order);
    tcase_add_test(threads, big_room_in_order_exactly_once);
    tcase_add_test(threads, sigterm_drains);
    TCase *slow_threads =
        mr_test_case(s, "slow_consumer_send_threads", setup_slow_threads, teardown, 120);
    tcase_add_test(slow_threads, slow_consumer_is_cut_off);

    /* The libuv loop: the same, and stopping on SIGTERM (drain) and SIGINT (the teardown). */
    TCase *uv = mr_test_case(s, "libuv", setup_uv, teardown, 120);
    tcase_add_test(uv, fanout_across_relays_exactly_once);
    tcase_add_test(uv, ten_thousand_in_order);
    tcase_add_test(uv, big_room_in_order_exactly_once);
    tcase_add_test(uv, presence_on_this_relay);
    tcase_add_test(uv, sigterm_drains);
    TCase *slow_uv = mr_test_case(s, "slow_consumer_libuv", setup_slow_uv, teardown, 120);
    tcase_add_test(slow_uv, slow_consumer_is_cut_off);

    TCase *presence = mr_test_case(s, "presence", setup_presence, teardown, 60);
    tcase_add_test(presence, presence_across_relays_and_no_zombies);

    TCase *drain = mr_test_case(s, "admin_drain", setup_admin_drain, teardown, 60);
    tcase_add_test(drain, admin_drain_moves_clients_and_undrain_restores);

    TCase *origin = mr_test_case(s, "origin_and_ip_limit", setup_origin, teardown, 60);
    tcase_add_test(origin, origin_allowlist_and_per_ip_limit);

    TCase *tls = mr_test_case(s, "tls", setup_tls, teardown_tls, 60);
    tcase_add_test(tls, tls13_only_with_hsts);
    tcase_add_test(tls, default_suites_prefer_aes128_and_chacha20_for_clients_that_ask);

    TCase *app = mr_test_case(s, "app_features", setup, teardown, 120);
    tcase_add_test(app, refresh_keeps_the_session_past_the_first_expiry);
    tcase_add_test(app, refresh_for_another_user_is_refused);
    tcase_add_test(app, signal_reaches_members_on_every_relay_over_core_nats);
    tcase_add_test(app, sdk_get_token_refreshes_without_reconnecting);

    return mr_test_run(s);
}
