/*
 * Integration tests of the C client library and meridian-cli against a real
 * meridian-relay and a real nats-server (JetStream), both started here on
 * free loopback ports. Covered: two library clients (publish with ack
 * callback, the other client's message callback gets the message once, a
 * large message arrives whole although lws hands it over in pieces, errors
 * carry the request id), `tail` in a child process printing what `send`
 * publishes, authentication and permission failures as clear CLI errors,
 * presence events and queries, the drain's reconnect frame and close 1012,
 * `tail` exiting non-zero when the relay dies or drains, and wss:// against a relay
 * with a self-signed certificate (--insecure, --ca-file, and refusal
 * without either).
 */
#include "cli_run.h"
#include "mr_test.h"
#include "mrc_client.h"
#include "mrc_token.h"

#include <check.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "client-test-secret"

static mr_test_nats nats;
static char *tmpdir;
static pid_t relay_pid;
static int relay_port, admin_port;
static char url[96];
static char cert_path[600];

/* Start a relay; with `tls` it serves wss:// with a fresh self-signed certificate. */
static void relay_start(bool tls)
{
    relay_port = mr_test_free_port();
    admin_port = mr_test_free_port();
    char tls_cfg[1400] = "";
    if (tls) {
        char key_path[600], log[600];
        snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tmpdir);
        snprintf(key_path, sizeof key_path, "%s/key.pem", tmpdir);
        snprintf(log, sizeof log, "%s/openssl.log", tmpdir);
        char *argv[] = {"openssl",  "req",           "-x509",   "-newkey",
                        "rsa:2048", "-nodes",        "-days",   "2",
                        "-subj",    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout",  key_path,        "-out",    cert_path,
                        NULL};
        pid_t p = mr_test_spawn(argv, log);
        int st = mr_test_wait_exit(p, 60000);
        ck_assert_msg(st == 0, "openssl could not make a test certificate; see %s", log);
        snprintf(tls_cfg, sizeof tls_cfg, ",\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"}", cert_path,
                 key_path);
    }
    char cfg[2400], cfg_path[600], log[600];
    snprintf(cfg, sizeof cfg,
             "{\"region\":\"eu-west\",\"node_id\":\"relay-c\",\"listen\":\"127.0.0.1:%d\","
             "\"admin_listen\":\"127.0.0.1:%d\",\"drain_grace_ms\":300,\"nats\":[\"%s\"],\"auth\":{"
             "\"secret\":\"" SECRET "\"}%s}",
             relay_port, admin_port, nats.url, tls_cfg);
    snprintf(cfg_path, sizeof cfg_path, "%s/relay.json", tmpdir);
    snprintf(log, sizeof log, "%s/relay.log", tmpdir);
    ck_assert_int_eq(mr_test_write_file(cfg_path, cfg), 0);
    char *argv[] = {MERIDIAN_RELAY_BIN, "--config", cfg_path, "--log-level", "debug", NULL};
    relay_pid = mr_test_spawn(argv, log);
    ck_assert_msg(mr_test_wait_port("127.0.0.1", relay_port, 15000) == 0,
                  "relay did not listen; see %s", log);
    /* Ready means NATS is connected and the stream exists: publishes can be acked. */
    int64_t deadline = mr_test_now_ms() + 20000;
    int status = -1;
    while (mr_test_now_ms() < deadline) {
        char *body = NULL;
        status = mr_test_http_get("127.0.0.1", admin_port, "/readyz", &body);
        free(body);
        if (status == 200)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(status == 200, "relay not ready (/readyz %d); see %s", status, log);
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/", tls ? "wss" : "ws", relay_port);
}

static void setup_common(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    tmpdir = mr_test_tmpdir("cclient-relay");
    mr_test_nats_start(&nats, true);
}

static void setup_ws(void)
{
    setup_common();
    relay_start(false);
}

static void setup_wss(void)
{
    setup_common();
    relay_start(true);
}

static void teardown(void)
{
    if (relay_pid > 0)
        mr_test_stop(relay_pid, SIGTERM, 10000);
    relay_pid = 0;
    mr_test_nats_stop(&nats);
    free(tmpdir);
}

static char *mint(const char *sub)
{
    char err[256];
    mrc_token_params p = {.secret = (const unsigned char *)SECRET,
                          .secret_len = strlen(SECRET),
                          .sub = sub,
                          .ttl_s = 600};
    char *t = mrc_token_mint(&p, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    return t;
}

/* ---- a library client that records everything its callbacks see ---- */

#define REC_MAX 64

typedef struct tclient {
    mrc_client *c;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool welcomed;
    char user[64];
    int joined;
    int64_t ack_ids[REC_MAX];
    char ack_mids[REC_MAX][72];
    char ack_msg_ids[REC_MAX][40];
    int acks;
    json_t *messages; /* array of whole message frames */
    int64_t err_ids[REC_MAX];
    char err_codes[REC_MAX][32];
    int errors;
    int closes;
    int close_code;
    json_t *presence; /* array of {"id","room","event","user","members"} */
    int reconnects;
    char reconnect_reason[64];
} tclient;

static void t_welcome(mrc_client *c, const char *user, json_t *w, void *ud)
{
    tclient *t = ud;
    pthread_mutex_lock(&t->mu);
    t->welcomed = true;
    snprintf(t->user, sizeof t->user, "%s", user);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_joined(mrc_client *c, int64_t id, const char *room, void *ud)
{
    tclient *t = ud;
    pthread_mutex_lock(&t->mu);
    t->joined++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_ack(mrc_client *c, int64_t id, const char *room, const char *mid, const char *msg_id,
                  void *ud)
{
    tclient *t = ud;
    pthread_mutex_lock(&t->mu);
    if (t->acks < REC_MAX) {
        t->ack_ids[t->acks] = id;
        snprintf(t->ack_mids[t->acks], sizeof t->ack_mids[0], "%s", mid);
        snprintf(t->ack_msg_ids[t->acks], sizeof t->ack_msg_ids[0], "%s", msg_id);
        t->acks++;
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_message(mrc_client *c, const mrc_message *m, void *ud)
{
    tclient *t = ud;
    json_error_t je;
    /* Check the frame text and the parsed fields agree, then keep the frame. */
    json_t *frame = json_loadb(m->frame, m->frame_len, 0, &je);
    ck_assert_ptr_nonnull(frame);
    ck_assert_str_eq(json_string_value(json_object_get(frame, "msg_id")), m->msg_id);
    ck_assert(json_equal(json_object_get(frame, "data"), m->data));
    pthread_mutex_lock(&t->mu);
    json_array_append_new(t->messages, frame);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_error(mrc_client *c, int64_t id, const char *code, const char *message,
                    bool retryable, void *ud)
{
    tclient *t = ud;
    pthread_mutex_lock(&t->mu);
    if (t->errors < REC_MAX) {
        t->err_ids[t->errors] = id;
        snprintf(t->err_codes[t->errors], sizeof t->err_codes[0], "%s", code);
        t->errors++;
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_presence(mrc_client *c, const mrc_presence *p, void *ud)
{
    tclient *t = ud;
    json_t *e = json_pack("{s:I, s:s}", "id", (json_int_t)p->id, "room", p->room);
    if (p->event)
        json_object_set_new(e, "event", json_string(p->event));
    if (p->user)
        json_object_set_new(e, "user", json_string(p->user));
    if (p->members)
        json_object_set(e, "members", p->members);
    pthread_mutex_lock(&t->mu);
    json_array_append_new(t->presence, e);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_reconnect(mrc_client *c, const char *reason, json_t *urls, void *ud)
{
    tclient *t = ud;
    ck_assert(json_is_array(urls));
    pthread_mutex_lock(&t->mu);
    t->reconnects++;
    snprintf(t->reconnect_reason, sizeof t->reconnect_reason, "%s", reason);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_close(mrc_client *c, int code, const char *reason, void *ud)
{
    tclient *t = ud;
    pthread_mutex_lock(&t->mu);
    t->closes++;
    t->close_code = code;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void t_open_echo(tclient *t, const char *sub, bool no_echo)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->messages = json_array();
    t->presence = json_array();
    char *tok = mint(sub);
    mrc_options o = {.url = url,
                     .token = tok,
                     .insecure = true,
                     .no_echo = no_echo,
                     .cb = {.welcome_cb = t_welcome,
                            .joined_cb = t_joined,
                            .ack_cb = t_ack,
                            .message_cb = t_message,
                            .error_cb = t_error,
                            .presence_cb = t_presence,
                            .reconnect_cb = t_reconnect,
                            .close_cb = t_close},
                     .user_data = t};
    char err[256];
    ck_assert_msg(mrc_client_new(&o, &t->c, err, sizeof err) == MRC_OK, "%s", err);
    free(tok);
}

static void t_open(tclient *t, const char *sub)
{
    t_open_echo(t, sub, false);
}

static void t_free(tclient *t)
{
    mrc_client_free(t->c);
    ck_assert_int_eq(t->closes, 1);
    json_decref(t->messages);
    json_decref(t->presence);
}

/* Wait until `cond` holds (evaluated with t->mu held) or the deadline passes. */
#define T_WAIT(t, cond, timeout_ms)                                                                \
    ({                                                                                             \
        struct timespec ts_;                                                                       \
        clock_gettime(CLOCK_REALTIME, &ts_);                                                       \
        ts_.tv_sec += (timeout_ms) / 1000 + 1;                                                     \
        pthread_mutex_lock(&(t)->mu);                                                              \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&(t)->cv, &(t)->mu, &ts_) != 0)                             \
                break;                                                                             \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&(t)->mu);                                                            \
        ok_;                                                                                       \
    })

/* How many recorded messages have this mid. Call with t->mu held. */
static int count_mid(tclient *t, const char *mid)
{
    int n = 0;
    size_t i;
    json_t *m;
    json_array_foreach(t->messages, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "mid")), mid) == 0)
            n++;
    }
    return n;
}

static json_t *find_mid(tclient *t, const char *mid)
{
    size_t i;
    json_t *m;
    json_array_foreach(t->messages, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "mid")), mid) == 0)
            return m;
    }
    return NULL;
}

START_TEST(library_publish_ack_and_message_once)
{
    tclient a, b;
    t_open(&a, "alice");
    t_open(&b, "bob");
    /* Joins may be requested before welcome: the client sends them after it. */
    ck_assert(mrc_join(a.c, "general", -1) > 0);
    ck_assert(mrc_join(b.c, "general", -1) > 0);
    ck_assert_msg(T_WAIT(&a, a.joined == 1, 10000), "alice did not join");
    ck_assert_msg(T_WAIT(&b, b.joined == 1, 10000), "bob did not join");
    ck_assert_str_eq(a.user, "alice");

    json_t *data = json_pack("{s:s}", "text", "hello bob");
    int64_t id = mrc_publish(a.c, "general", "lib-1", data);
    json_decref(data);
    ck_assert_int_gt(id, 0);
    ck_assert_msg(T_WAIT(&a, a.acks == 1, 10000), "no ack");
    ck_assert_int_eq(a.ack_ids[0], id);
    ck_assert_str_eq(a.ack_mids[0], "lib-1");
    ck_assert_int_eq((int)strlen(a.ack_msg_ids[0]), 32);
    ck_assert_msg(T_WAIT(&b, count_mid(&b, "lib-1") == 1, 10000), "bob got no message");
    pthread_mutex_lock(&b.mu);
    json_t *m = find_mid(&b, "lib-1");
    ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "message");
    ck_assert_str_eq(json_string_value(json_object_get(m, "from")), "alice");
    ck_assert_str_eq(json_string_value(json_object_get(m, "room")), "general");
    ck_assert_str_eq(json_string_value(json_object_get(m, "msg_id")), a.ack_msg_ids[0]);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "data"), "text")),
                     "hello bob");
    pthread_mutex_unlock(&b.mu);

    /*
     * "Once": publish a second message from the same connection and wait for
     * it. Order is kept per publisher, so a duplicate of lib-1 would have
     * come before lib-2.
     */
    ck_assert(mrc_publish_text(a.c, "general", "lib-2", "{\"text\":\"again\"}") > 0);
    ck_assert(T_WAIT(&b, count_mid(&b, "lib-2") == 1, 10000));
    ck_assert(T_WAIT(&a, count_mid(&a, "lib-2") == 1 && a.acks == 2, 10000));
    pthread_mutex_lock(&b.mu);
    ck_assert_int_eq(count_mid(&b, "lib-1"), 1);
    ck_assert_int_eq((int)json_array_size(b.messages), 2);
    pthread_mutex_unlock(&b.mu);
    pthread_mutex_lock(&a.mu);
    ck_assert_int_eq(count_mid(&a, "lib-1"), 1); /* the publisher gets its own message once too */
    pthread_mutex_unlock(&a.mu);

    /* A retry with the same mid is recognised: acked with the same msg_id. */
    ck_assert(mrc_publish_text(a.c, "general", "lib-1", "{\"text\":\"hello bob\"}") > 0);
    ck_assert(T_WAIT(&a, a.acks == 3, 10000));
    ck_assert_str_eq(a.ack_msg_ids[2], a.ack_msg_ids[0]);

    t_free(&a);
    t_free(&b);
    ck_assert_int_eq(a.close_code, 1000);
}
END_TEST

/*
 * mrc_options.no_echo (hello "echo":false): the publisher gets its acks and
 * not its own messages; the other member gets them; the publisher still
 * gets the other member's message, and none of its own before it.
 */
START_TEST(library_no_echo_gets_only_acks)
{
    tclient a, b;
    t_open_echo(&a, "alice", true);
    t_open(&b, "bob");
    ck_assert(mrc_join(a.c, "general", -1) > 0);
    ck_assert(mrc_join(b.c, "general", -1) > 0);
    ck_assert_msg(T_WAIT(&a, a.joined == 1, 10000), "alice did not join");
    ck_assert_msg(T_WAIT(&b, b.joined == 1, 10000), "bob did not join");
    ck_assert(mrc_publish_text(a.c, "general", "ne-1", "{\"text\":\"one\"}") > 0);
    ck_assert(mrc_publish_text(a.c, "general", "ne-2", "{\"text\":\"two\"}") > 0);
    ck_assert_msg(T_WAIT(&a, a.acks == 2, 10000), "no acks");
    ck_assert_msg(T_WAIT(&b, count_mid(&b, "ne-1") == 1 && count_mid(&b, "ne-2") == 1, 10000),
                  "bob did not get both");
    ck_assert(mrc_publish_text(b.c, "general", "from-bob", "{\"text\":\"hi\"}") > 0);
    ck_assert_msg(T_WAIT(&a, count_mid(&a, "from-bob") == 1, 10000), "alice did not get bob's");
    pthread_mutex_lock(&a.mu);
    ck_assert_int_eq(count_mid(&a, "ne-1"), 0);
    ck_assert_int_eq(count_mid(&a, "ne-2"), 0);
    ck_assert_int_eq((int)json_array_size(a.messages), 1);
    pthread_mutex_unlock(&a.mu);
    t_free(&a);
    t_free(&b);
}
END_TEST

START_TEST(library_large_message_reassembled)
{
    tclient a, b;
    t_open(&a, "alice");
    t_open(&b, "bob");
    mrc_join(a.c, "bulk", -1);
    mrc_join(b.c, "bulk", -1);
    ck_assert(T_WAIT(&a, a.joined == 1, 10000));
    ck_assert(T_WAIT(&b, b.joined == 1, 10000));
    /* 60 000 bytes of text: far over lws's receive buffer, under the relay's 64 KiB limit. */
    size_t n = 60000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    json_t *data = json_pack("{s:s}", "text", big);
    ck_assert(mrc_publish(a.c, "bulk", "big-1", data) > 0);
    json_decref(data);
    ck_assert_msg(T_WAIT(&b, count_mid(&b, "big-1") == 1, 15000), "large message not received");
    pthread_mutex_lock(&b.mu);
    json_t *m = find_mid(&b, "big-1");
    const char *text = json_string_value(json_object_get(json_object_get(m, "data"), "text"));
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(strlen(text), n);
    ck_assert(strcmp(text, big) == 0);
    pthread_mutex_unlock(&b.mu);
    free(big);
    t_free(&a);
    t_free(&b);
}
END_TEST

START_TEST(library_errors_carry_request_id)
{
    tclient a;
    t_open(&a, "alice");
    ck_assert(T_WAIT(&a, a.welcomed, 10000));
    /* Invalid arguments are refused locally, with no frame sent and no callback. */
    ck_assert_int_eq(mrc_join(a.c, "bad room!", -1), MRC_EINVAL);
    ck_assert_int_eq(mrc_publish_text(a.c, "general", "has space", "{}"), MRC_EINVAL);
    ck_assert_int_eq(mrc_publish_text(a.c, "general", "m", "{not json"), MRC_EINVAL);
    /* Publishing to a room not joined is the relay's not_joined, answering our id. */
    int64_t id = mrc_publish_text(a.c, "elsewhere", "m-1", "{\"text\":\"x\"}");
    ck_assert_int_gt(id, 0);
    ck_assert_msg(T_WAIT(&a, a.errors == 1, 10000), "no error frame");
    ck_assert_int_eq(a.err_ids[0], id);
    ck_assert_str_eq(a.err_codes[0], "not_joined");
    ck_assert_int_eq(a.acks, 0);
    mrc_close(a.c);
    ck_assert(T_WAIT(&a, a.closes == 1, 10000));
    ck_assert_int_eq(a.close_code, 1000);
    ck_assert_int_eq(mrc_join(a.c, "general", -1), MRC_ECLOSED);
    t_free(&a);
}
END_TEST

START_TEST(library_bad_token_closes_4001)
{
    tclient a;
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.cv, NULL);
    a.messages = json_array();
    a.presence = json_array();
    mrc_options o = {.url = url,
                     .token = "not.a.token",
                     .cb = {.error_cb = t_error, .close_cb = t_close},
                     .user_data = &a};
    ck_assert_int_eq(mrc_client_new(&o, &a.c, NULL, 0), MRC_OK);
    ck_assert(T_WAIT(&a, a.closes == 1, 15000));
    ck_assert_int_eq(a.close_code, 4001);
    ck_assert_int_ge(a.errors, 1);
    ck_assert_str_eq(a.err_codes[0], "auth_failed");
    t_free(&a);
}
END_TEST

/* The first presence entry matching event/user (event NULL: a reply to request `id`). */
static json_t *find_presence(tclient *t, const char *event, const char *user, int64_t id)
{
    size_t i;
    json_t *e;
    json_array_foreach(t->presence, i, e)
    {
        const char *ev = json_string_value(json_object_get(e, "event"));
        const char *us = json_string_value(json_object_get(e, "user"));
        if (event && ev && strcmp(ev, event) == 0 && us && strcmp(us, user) == 0)
            return e;
        if (!event && !ev && json_integer_value(json_object_get(e, "id")) == id)
            return e;
    }
    return NULL;
}

START_TEST(library_presence_events_and_query)
{
    tclient a, b;
    t_open(&a, "alice");
    mrc_join(a.c, "lobby", -1);
    ck_assert(T_WAIT(&a, a.joined == 1, 10000));
    t_open(&b, "bob");
    mrc_join(b.c, "lobby", -1);
    ck_assert(T_WAIT(&b, b.joined == 1, 10000));
    ck_assert_msg(T_WAIT(&a, find_presence(&a, "join", "bob", -1) != NULL, 10000),
                  "alice saw no presence join for bob");
    int64_t id = mrc_presence_query(a.c, "lobby");
    ck_assert_int_gt(id, 0);
    ck_assert_msg(T_WAIT(&a, find_presence(&a, NULL, NULL, id) != NULL, 10000),
                  "no presence reply");
    pthread_mutex_lock(&a.mu);
    json_t *reply = find_presence(&a, NULL, NULL, id);
    json_t *members = json_object_get(reply, "members");
    ck_assert_int_eq(json_array_size(members), 2);
    pthread_mutex_unlock(&a.mu);
    ck_assert(mrc_leave(b.c, "lobby") > 0);
    ck_assert_msg(T_WAIT(&a, find_presence(&a, "leave", "bob", -1) != NULL, 10000),
                  "alice saw no presence leave for bob");
    t_free(&b);
    t_free(&a);
}
END_TEST

START_TEST(library_drain_reconnect_then_1012)
{
    tclient a;
    t_open(&a, "alice");
    mrc_join(a.c, "general", -1);
    ck_assert(T_WAIT(&a, a.joined == 1, 10000));
    kill(relay_pid, SIGTERM);
    ck_assert_msg(T_WAIT(&a, a.reconnects == 1, 10000), "no reconnect frame");
    ck_assert_str_eq(a.reconnect_reason, "draining");
    ck_assert_msg(T_WAIT(&a, a.closes == 1, 10000), "no close after the drain");
    ck_assert_int_eq(a.close_code, 1012);
    t_free(&a);
}
END_TEST

/* ---- meridian-cli against the relay ---- */

START_TEST(cli_tail_receives_send)
{
    const char *tail_args[] = {"tail",  "--url",   url,       "--secret", SECRET,
                               "--sub", "watcher", "general", "random",   NULL};
    cli_proc tail;
    cli_start(&tail, tmpdir, "tail", tail_args);
    ck_assert_msg(cli_wait_output(&tail, true, "joined random", 15000), "tail did not join");
    ck_assert(cli_wait_output(&tail, true, "joined general", 1000));

    const char *send_args[] = {
        "send",  "--url",      url,       "--secret",           SECRET, "--sub", "sender",
        "--mid", "cli-test-1", "general", "hello from the cli", NULL};
    char *out, *err;
    int rc = cli_run(tmpdir, "send", send_args, 20000, &out, &err);
    ck_assert_msg(rc == 0, "send exit %d: %s", rc, err);
    ck_assert_int_eq(cli_count_lines(out), 1);
    ck_assert_int_eq((int)strlen(out), 33); /* msg_id and newline */
    out[32] = '\0';

    ck_assert_msg(cli_wait_output(&tail, false, "hello from the cli", 10000),
                  "tail did not print the message");
    /* A second message, with --json data, to a second room. */
    const char *send2[] = {"send",   "--url",  url,      "--secret",  SECRET, "--sub",
                           "sender", "--json", "random", "{\"n\":2}", NULL};
    char *out2, *err2;
    rc = cli_run(tmpdir, "send2", send2, 20000, &out2, &err2);
    ck_assert_msg(rc == 0, "send exit %d: %s", rc, err2);
    ck_assert(cli_wait_output(&tail, false, "\"n\":2", 10000));

    /* Each message is one JSON line naming its room, sender and id. */
    char *lines = cli_out(&tail);
    ck_assert_int_eq(cli_count_lines(lines), 2);
    char *nl = strchr(lines, '\n');
    *nl = '\0';
    json_error_t je;
    json_t *m = json_loads(lines, 0, &je);
    ck_assert_msg(m != NULL, "not JSON: %s", lines);
    ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "message");
    ck_assert_str_eq(json_string_value(json_object_get(m, "room")), "general");
    ck_assert_str_eq(json_string_value(json_object_get(m, "from")), "sender");
    ck_assert_str_eq(json_string_value(json_object_get(m, "mid")), "cli-test-1");
    ck_assert_str_eq(json_string_value(json_object_get(m, "msg_id")), out);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "data"), "text")),
                     "hello from the cli");
    json_decref(m);
    json_t *m2 = json_loads(nl + 1, 0, &je);
    ck_assert_msg(m2 != NULL, "not JSON: %s", nl + 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m2, "data"), "n")), 2);
    json_decref(m2);

    /* SIGTERM: a normal close and exit 0. */
    kill(tail.pid, SIGTERM);
    ck_assert_int_eq(cli_wait(&tail, 10000), 0);
    free(lines);
    free(out);
    free(err);
    free(out2);
    free(err2);
}
END_TEST

/*
 * Publish to `room` until the tail (which may join later than the publisher)
 * exits, at most 100 messages or 15 s; returns its exit code, or -1.
 */
static int publish_until_exit(tclient *a, cli_proc *tail, const char *room)
{
    int64_t deadline = mr_test_now_ms() + 15000;
    int rc = -1;
    for (int i = 0; i < 100 && mr_test_now_ms() < deadline; i++) {
        char mid[32];
        snprintf(mid, sizeof mid, "%s-%d", room, i);
        mrc_publish_text(a->c, room, mid, "{\"text\":\"tick\"}");
        int st = mr_test_wait_exit(tail->pid, 150);
        if (st != -1) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            tail->pid = 0;
            break;
        }
    }
    if (tail->pid > 0)
        cli_wait(tail, 1);
    return rc;
}

START_TEST(cli_tail_count_exits_zero)
{
    const char *tail_args[] = {"tail", "--url",   url, "--secret", SECRET, "--sub",
                               "w",    "--count", "1", "--quiet",  "news", NULL};
    cli_proc tail;
    cli_start(&tail, tmpdir, "tail-count", tail_args);
    /* --quiet hides "joined": wait for membership through a library client's presence instead. */
    tclient a;
    t_open(&a, "pub");
    mrc_join(a.c, "news", -1);
    ck_assert(T_WAIT(&a, a.joined == 1, 10000));
    int rc = publish_until_exit(&a, &tail, "news");
    ck_assert_msg(rc == 0, "tail --count 1 exit %d", rc);
    char *lines = cli_out(&tail);
    ck_assert_int_eq(cli_count_lines(lines), 1);
    char *err = cli_err(&tail);
    ck_assert_msg(err[0] == '\0', "--quiet printed: %s", err);
    free(lines);
    free(err);
    t_free(&a);
}
END_TEST

/* Frames or a msg_id that stdout cannot take (a full disk) fail the command: nothing is lost
 * silently. */
START_TEST(cli_output_unwritable_fails)
{
    const char *tail_args[] = {"tail",  "--url", url,       "--secret", SECRET,
                               "--sub", "w",     "--quiet", "full",     NULL};
    cli_proc tail;
    cli_start_to(&tail, tmpdir, "tail-full", tail_args, "/dev/full");
    tclient a;
    t_open(&a, "pub");
    mrc_join(a.c, "full", -1);
    ck_assert(T_WAIT(&a, a.joined == 1, 10000));
    int rc = publish_until_exit(&a, &tail, "full");
    ck_assert_msg(rc == 1, "tail >/dev/full exit %d", rc);
    char *err = cli_err(&tail);
    ck_assert_msg(strstr(err, "cannot write the output"), "tail stderr: %s", err);
    free(err);
    t_free(&a);

    const char *send_args[] = {"send",  "--url", url,    "--secret",         SECRET,
                               "--sub", "w",     "full", "{\"text\":\"x\"}", NULL};
    cli_proc send;
    cli_start_to(&send, tmpdir, "send-full", send_args, "/dev/full");
    ck_assert_int_eq(cli_wait(&send, 15000), 1);
    err = cli_err(&send);
    ck_assert_msg(strstr(err, "published, but cannot write its msg_id"), "send stderr: %s", err);
    free(err);

    const char *help_args[] = {"--help", NULL};
    cli_proc help;
    cli_start_to(&help, tmpdir, "help-full", help_args, "/dev/full");
    ck_assert_int_eq(cli_wait(&help, 5000), 1);
}
END_TEST

START_TEST(cli_signals_and_rewind)
{
    /* tail --rewind joins with rewind (this relay has no history service: recovered false). */
    const char *tail_args[] = {"tail", "--url",     url,        "--secret", SECRET,   "--sub",
                               "eyes", "--signals", "--rewind", "50",       "typing", NULL};
    cli_proc tail;
    cli_start(&tail, tmpdir, "tail-signals", tail_args);
    ck_assert_msg(cli_wait_output(&tail, true, "joined typing", 20000), "tail did not join");
    const char *send_args[] = {
        "send",     "--url",  url,      "--secret",          SECRET, "--sub", "typer",
        "--signal", "--json", "typing", "{\"typing\":true}", NULL};
    char *out, *err;
    int rc = cli_run(tmpdir, "send-signal", send_args, 20000, &out, &err);
    ck_assert_msg(rc == 0, "send --signal exit %d: %s", rc, err);
    ck_assert_str_eq(out, ""); /* no msg_id: a signal has none */
    ck_assert_msg(cli_wait_output(&tail, false, "\"type\":\"signal\"", 10000),
                  "tail did not print the signal");
    char *lines = cli_out(&tail);
    json_t *j = json_loads(lines, 0, NULL);
    ck_assert_msg(j != NULL, "not one JSON line: %s", lines);
    ck_assert_str_eq(json_string_value(json_object_get(j, "from")), "typer");
    ck_assert(json_is_true(json_object_get(json_object_get(j, "data"), "typing")));
    json_decref(j);
    /* A signal to a room it may not join: the relay's error, exit 1. */
    const char *bad[] = {"send",   "--url", url,        "--secret", SECRET, "--sub", "typer",
                         "--room", "x-*",   "--signal", "typing",   "hi",   NULL};
    char *out2, *err2;
    rc = cli_run(tmpdir, "send-signal-bad", bad, 20000, &out2, &err2);
    ck_assert_msg(rc == 1 && strstr(err2, "forbidden"), "exit %d: %s", rc, err2);
    kill(tail.pid, SIGTERM);
    ck_assert_int_eq(cli_wait(&tail, 10000), 0);
    free(lines);
    free(out);
    free(err);
    free(out2);
    free(err2);
}
END_TEST

START_TEST(cli_auth_and_permission_errors)
{
    char *out, *err;
    const char *bad_secret[] = {"send",  "--url", url,       "--secret", "wrong-secret",
                                "--sub", "eve",   "general", "hi",       NULL};
    int rc = cli_run(tmpdir, "bad-secret", bad_secret, 20000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "meridian-cli: authentication failed"), "%s", err);
    ck_assert_int_eq(cli_count_lines(err), 1);
    ck_assert_str_eq(out, "");
    free(out);
    free(err);

    const char *tail_bad[] = {"tail", "--url", url, "--token", "garbage", "general", NULL};
    rc = cli_run(tmpdir, "tail-bad", tail_bad, 20000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "authentication failed"), "%s", err);
    free(out);
    free(err);

    const char *forbidden[] = {"send", "--url",  url,      "--secret", SECRET, "--sub",
                               "eve",  "--room", "team-*", "general",  "hi",   NULL};
    rc = cli_run(tmpdir, "forbidden", forbidden, 20000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "forbidden"), "%s", err);
    ck_assert_int_eq(cli_count_lines(err), 1);
    free(out);
    free(err);

    const char *allowed[] = {"send", "--url",  url,      "--secret", SECRET, "--sub",
                             "eve",  "--room", "team-*", "team-red", "hi",   NULL};
    rc = cli_run(tmpdir, "allowed", allowed, 20000, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_tail_exits_nonzero_when_relay_dies)
{
    const char *tail_args[] = {"tail",  "--url", url,       "--secret", SECRET,
                               "--sub", "w",     "general", NULL};
    cli_proc tail;
    cli_start(&tail, tmpdir, "tail-kill", tail_args);
    ck_assert(cli_wait_output(&tail, true, "joined general", 15000));
    mr_test_stop(relay_pid, SIGKILL, 5000);
    relay_pid = 0;
    int rc = cli_wait(&tail, 15000);
    ck_assert_msg(rc == 3, "tail exit %d", rc);
    char *err = cli_err(&tail);
    ck_assert_msg(strstr(err, "meridian-cli: connection closed: 1006"), "%s", err);
    free(err);
}
END_TEST

START_TEST(cli_tail_exits_nonzero_on_drain)
{
    const char *tail_args[] = {"tail",  "--url", url,       "--secret", SECRET,
                               "--sub", "w",     "general", NULL};
    cli_proc tail;
    cli_start(&tail, tmpdir, "tail-drain", tail_args);
    ck_assert(cli_wait_output(&tail, true, "joined general", 15000));
    kill(relay_pid, SIGTERM);
    int rc = cli_wait(&tail, 15000);
    ck_assert_msg(rc == 3, "tail exit %d", rc);
    char *err = cli_err(&tail);
    ck_assert_msg(strstr(err, "reconnect"), "%s", err);
    ck_assert_msg(strstr(err, "meridian-cli: connection closed: 1012"), "%s", err);
    free(err);
}
END_TEST

START_TEST(cli_send_errors_nats_down_and_wrong_port)
{
    char *out, *err;
    /* Not a WebSocket endpoint (the admin HTTP port): the HTTP status is named. */
    char admin_url[64];
    snprintf(admin_url, sizeof admin_url, "ws://127.0.0.1:%d/", admin_port);
    const char *wrong[] = {"send",  "--url", admin_url, "--secret", SECRET,
                           "--sub", "a",     "general", "hi",       NULL};
    int rc = cli_run(tmpdir, "wrong-port", wrong, 20000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "refused the WebSocket upgrade (HTTP 404)"), "%s", err);
    free(out);
    free(err);

    /* Without NATS the relay cannot accept a publish: a retryable error, exit 1. */
    mr_test_nats_stop(&nats);
    const char *send_args[] = {"send",  "--url", url,       "--secret", SECRET,
                               "--sub", "a",     "general", "hi",       NULL};
    rc = cli_run(tmpdir, "nats-down", send_args, 20000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "meridian-cli: relay refused the request: unavailable"), "%s", err);
    ck_assert_int_eq(cli_count_lines(err), 1);
    free(out);
    free(err);
}
END_TEST

/* ---- wss:// ---- */

START_TEST(tls_insecure_and_ca_file)
{
    char *out, *err;
    const char *insecure[] = {"send",  "--url", url,       "--insecure", "--secret", SECRET,
                              "--sub", "t",     "general", "over tls",   NULL};
    int rc = cli_run(tmpdir, "tls-insecure", insecure, 20000, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    free(out);
    free(err);

    const char *ca[] = {"send", "--url", url, "--ca-file", cert_path,           "--secret",
                        SECRET, "--sub", "t", "general",   "over verified tls", NULL};
    rc = cli_run(tmpdir, "tls-ca", ca, 20000, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    free(out);
    free(err);

    /* Without trusting the certificate: a clear TLS failure, promptly. */
    const char *untrusted[] = {"send",  "--url", url,       "--secret", SECRET,
                               "--sub", "t",     "general", "nope",     NULL};
    int64_t t0 = mr_test_now_ms();
    rc = cli_run(tmpdir, "tls-untrusted", untrusted, 20000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_int_lt(mr_test_now_ms() - t0, 10000);
    ck_assert_msg(strstr(err, "cannot connect to 127.0.0.1:"), "%s", err);
    ck_assert_int_eq(cli_count_lines(err), 1);
    free(out);
    free(err);

    /* The library over TLS: publish and receive. */
    tclient a;
    t_open(&a, "tls-lib");
    mrc_join(a.c, "secure", -1);
    ck_assert(T_WAIT(&a, a.joined == 1, 10000));
    ck_assert(mrc_publish_text(a.c, "secure", "s-1", "{\"text\":\"tls\"}") > 0);
    ck_assert(T_WAIT(&a, a.acks == 1 && count_mid(&a, "s-1") == 1, 10000));
    t_free(&a);
}
END_TEST

static Suite *client_relay_suite(void)
{
    Suite *s = suite_create("client_relay");
    TCase *lib = tcase_create("library");
    tcase_add_checked_fixture(lib, setup_ws, teardown);
    tcase_set_timeout(lib, 120);
    tcase_add_test(lib, library_publish_ack_and_message_once);
    tcase_add_test(lib, library_no_echo_gets_only_acks);
    tcase_add_test(lib, library_large_message_reassembled);
    tcase_add_test(lib, library_errors_carry_request_id);
    tcase_add_test(lib, library_bad_token_closes_4001);
    tcase_add_test(lib, library_presence_events_and_query);
    tcase_add_test(lib, library_drain_reconnect_then_1012);
    suite_add_tcase(s, lib);
    TCase *cli = tcase_create("cli");
    tcase_add_checked_fixture(cli, setup_ws, teardown);
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, cli_tail_receives_send);
    tcase_add_test(cli, cli_tail_count_exits_zero);
    tcase_add_test(cli, cli_auth_and_permission_errors);
    tcase_add_test(cli, cli_tail_exits_nonzero_when_relay_dies);
    tcase_add_test(cli, cli_tail_exits_nonzero_on_drain);
    tcase_add_test(cli, cli_send_errors_nats_down_and_wrong_port);
    tcase_add_test(cli, cli_output_unwritable_fails);
    suite_add_tcase(s, cli);
    TCase *app = tcase_create("app_features");
    tcase_add_checked_fixture(app, setup_ws, teardown);
    tcase_set_timeout(app, 120);
    tcase_add_test(app, cli_signals_and_rewind);
    suite_add_tcase(s, app);
    TCase *tls = tcase_create("tls");
    tcase_add_checked_fixture(tls, setup_wss, teardown);
    tcase_set_timeout(tls, 180);
    tcase_add_test(tls, tls_insecure_and_ca_file);
    suite_add_tcase(s, tls);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_relay_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
