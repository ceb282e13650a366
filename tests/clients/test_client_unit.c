/*
 * Unit tests of the C client (clients/c) that need no relay: tokens minted
 * by `meridian-cli token` verify with the relay's own verifier
 * (mr_jwt_verify), usage errors are one clear line with exit 2, and
 * connection failures (bad URL, refused port, unknown host, a server that
 * accepts TCP but never speaks WebSocket) are reported promptly through the
 * library's close callback and the CLI's exit status instead of hanging.
 */
#include "cli_run.h"
#include "mr_jwt.h"
#include "mr_test.h"
#include "mrc_client.h"
#include "mrc_token.h"

#include <arpa/inet.h>
#include <check.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char *tmpdir;

static void setup(void)
{
    tmpdir = mr_test_tmpdir("cclient");
    lws_set_log_level(LLL_ERR, NULL);
}

static void teardown(void)
{
    free(tmpdir);
}

/* Strip the trailing newline the CLI prints after a token. */
static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static mr_jwt_status verify(const char *secret, const char *tok, const char *iss, const char *aud,
                            mr_jwt_claims *out)
{
    mr_jwt_params p = {(const unsigned char *)secret, strlen(secret), iss, aud, 5};
    return mr_jwt_verify(&p, tok, strlen(tok), (int64_t)time(NULL), out);
}

START_TEST(token_verifies_with_relay_verifier)
{
    const char *args[] = {"token",        "--secret", "dev-secret", "--sub",  "alice",  "--ttl",
                          "120",          "--room",   "general",    "--room", "team-*", "--iss",
                          "meridian-dev", "--aud",    "chat",       NULL};
    char *out, *err;
    int rc = cli_run(tmpdir, "token", args, 10000, &out, &err);
    ck_assert_msg(rc == 0, "exit %d, stderr: %s", rc, err);
    ck_assert_int_eq(cli_count_lines(out), 1);
    chomp(out);
    mr_jwt_claims cl;
    mr_jwt_status st = verify("dev-secret", out, "meridian-dev", "chat", &cl);
    ck_assert_msg(st == MR_JWT_OK, "verify: %s", mr_jwt_status_str(st));
    ck_assert_str_eq(cl.sub, "alice");
    int64_t now = (int64_t)time(NULL);
    ck_assert_msg(cl.exp >= now + 110 && cl.exp <= now + 121, "exp %lld", (long long)cl.exp);
    ck_assert_int_eq(json_array_size(cl.rooms), 2);
    ck_assert(mr_jwt_room_allowed(cl.rooms, "general", 7));
    ck_assert(mr_jwt_room_allowed(cl.rooms, "team-red", 8));
    ck_assert(!mr_jwt_room_allowed(cl.rooms, "random", 6));
    mr_jwt_claims_free(&cl);
    /* The wrong secret, issuer or audience must not verify. */
    ck_assert_int_eq(verify("other", out, NULL, NULL, &cl), MR_JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify("dev-secret", out, "someone-else", NULL, &cl), MR_JWT_BAD_ISSUER);
    ck_assert_int_eq(verify("dev-secret", out, NULL, "other-app", &cl), MR_JWT_BAD_AUDIENCE);
    free(out);
    free(err);
}
END_TEST

START_TEST(token_defaults_all_rooms_one_hour)
{
    const char *args[] = {"token", "--secret", "s3", "--sub", "bob", NULL};
    char *out, *err;
    ck_assert_int_eq(cli_run(tmpdir, "token-def", args, 10000, &out, &err), 0);
    chomp(out);
    mr_jwt_claims cl;
    ck_assert_int_eq(verify("s3", out, NULL, NULL, &cl), MR_JWT_OK);
    ck_assert_str_eq(cl.sub, "bob");
    ck_assert_ptr_null(cl.rooms);
    int64_t now = (int64_t)time(NULL);
    ck_assert(cl.exp >= now + 3590 && cl.exp <= now + 3601);
    mr_jwt_claims_free(&cl);
    free(out);
    free(err);
}
END_TEST

START_TEST(token_secret_file_drops_newline)
{
    char path[600];
    snprintf(path, sizeof path, "%s/secret", tmpdir);
    ck_assert_int_eq(mr_test_write_file(path, "file-secret\n"), 0);
    const char *args[] = {"token", "--secret-file", path, "--sub", "carol", NULL};
    char *out, *err;
    int rc = cli_run(tmpdir, "token-file", args, 10000, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    chomp(out);
    mr_jwt_claims cl;
    ck_assert_int_eq(verify("file-secret", out, NULL, NULL, &cl), MR_JWT_OK);
    ck_assert_str_eq(cl.sub, "carol");
    mr_jwt_claims_free(&cl);
    free(out);
    free(err);
}
END_TEST

/* Each bad invocation: exit 2, nothing on stdout, one line on stderr naming the problem. */
static void expect_usage_error(const char *tag, const char *const args[], const char *needle)
{
    char *out, *err;
    int rc = cli_run(tmpdir, tag, args, 10000, &out, &err);
    ck_assert_msg(rc == 2, "%s: exit %d, stderr: %s", tag, rc, err);
    ck_assert_msg(out[0] == '\0', "%s: stdout not empty: %s", tag, out);
    ck_assert_msg(cli_count_lines(err) == 1, "%s: stderr is not one line: %s", tag, err);
    ck_assert_msg(strncmp(err, "meridian-cli: ", 14) == 0, "%s: %s", tag, err);
    ck_assert_msg(strstr(err, needle), "%s: '%s' not in: %s", tag, needle, err);
    free(out);
    free(err);
}

START_TEST(token_usage_errors)
{
    const char *no_sub[] = {"token", "--secret", "s", NULL};
    expect_usage_error("no-sub", no_sub, "--sub");
    const char *no_secret[] = {"token", "--sub", "a", NULL};
    expect_usage_error("no-secret", no_secret, "secret");
    const char *bad_room[] = {"token", "--secret", "s", "--sub", "a", "--room", "no spaces", NULL};
    expect_usage_error("bad-room", bad_room, "room pattern");
    const char *bad_ttl[] = {"token", "--secret", "s", "--sub", "a", "--ttl", "0", NULL};
    expect_usage_error("bad-ttl", bad_ttl, "--ttl");
    const char *missing[] = {"token", "--sub", NULL};
    expect_usage_error("missing-value", missing, "needs a value");
    const char *unknown[] = {"token", "--frobnicate", NULL};
    expect_usage_error("unknown-opt", unknown, "--frobnicate");
    const char *no_file[] = {"token", "--secret-file", "/nonexistent/x", "--sub", "a", NULL};
    expect_usage_error("no-file", no_file, "/nonexistent/x");
    const char *unknown_cmd[] = {"frob", NULL};
    expect_usage_error("unknown-cmd", unknown_cmd, "frob");
    const char *send_no_url[] = {"send", "--token", "t", "general", "hi", NULL};
    expect_usage_error("send-no-url", send_no_url, "--url");
    const char *send_bad_room[] = {"send", "--url", "ws://127.0.0.1:1/", "--token", "t", "bad room",
                                   "hi",   NULL};
    expect_usage_error("send-bad-room", send_bad_room, "bad room");
    const char *tail_no_room[] = {"tail", "--url", "ws://127.0.0.1:1/", "--token", "t", NULL};
    expect_usage_error("tail-no-room", tail_no_room, "ROOM");
    const char *bad_url[] = {"send", "--url", "http://127.0.0.1:1/", "--token", "t", "general",
                             "hi",   NULL};
    expect_usage_error("bad-url", bad_url, "ws://");
}
END_TEST

START_TEST(help_and_version)
{
    const char *cmds[] = {"token", "tail", "send"};
    for (int i = 0; i < 3; i++) {
        const char *args[] = {cmds[i], "--help", NULL};
        char *out, *err;
        ck_assert_int_eq(cli_run(tmpdir, "help", args, 10000, &out, &err), 0);
        ck_assert_msg(strstr(out, "usage: meridian-cli ") && strstr(out, cmds[i]), "%s", out);
        free(out);
        free(err);
    }
    const char *ver[] = {"--version", NULL};
    char *out, *err;
    ck_assert_int_eq(cli_run(tmpdir, "version", ver, 10000, &out, &err), 0);
    ck_assert_msg(strncmp(out, "meridian-cli " MERIDIAN_VERSION, 18) == 0, "%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(mint_api)
{
    char err[256];
    const char *rooms[] = {"*"};
    mrc_token_params p = {(const unsigned char *)"k", 1, "dave", 60, rooms, 1, NULL, NULL, 0};
    char *tok = mrc_token_mint(&p, err, sizeof err);
    ck_assert_ptr_nonnull(tok);
    mr_jwt_claims cl;
    ck_assert_int_eq(verify("k", tok, NULL, NULL, &cl), MR_JWT_OK);
    ck_assert(mr_jwt_room_allowed(cl.rooms, "anything", 8));
    mr_jwt_claims_free(&cl);
    free(tok);
    p.sub = "";
    ck_assert_ptr_null(mrc_token_mint(&p, err, sizeof err));
    ck_assert(strstr(err, "sub"));
    ck_assert(mrc_token_room_pattern_valid("team-*"));
    ck_assert(!mrc_token_room_pattern_valid("te am"));
    ck_assert(!mrc_token_room_pattern_valid(""));
    ck_assert(mrc_mid_valid("c1-0001"));
    ck_assert(!mrc_mid_valid("has space"));
    ck_assert(!mrc_mid_valid(""));
}
END_TEST

/* ---- the library against endpoints that are not relays ---- */

typedef struct close_rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int closes;
    int code;
    char reason[256];
} close_rec;

static void rec_close(mrc_client *c, int code, const char *reason, void *ud)
{
    close_rec *r = ud;
    pthread_mutex_lock(&r->mu);
    r->closes++;
    r->code = code;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Wait until close_cb ran; returns false on time-out. */
static bool rec_wait(close_rec *r, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&r->mu);
    while (r->closes == 0)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0)
            break;
    bool ok = r->closes > 0;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void rec_init(close_rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

START_TEST(bad_urls_rejected_up_front)
{
    const char *bad[] = {"http://127.0.0.1:1/", "127.0.0.1:80", "ws://", "ws://h:0/",
                         "ws://h:99999/",       "wss:///x",     ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mrc_options o = {.url = bad[i], .token = "t"};
        mrc_client *c = (mrc_client *)1;
        char err[256] = "";
        int rc = mrc_client_new(&o, &c, err, sizeof err);
        ck_assert_msg(rc == MRC_EINVAL, "%s: rc %d", bad[i], rc);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err, "URL") || strstr(err, "url"), "%s: %s", bad[i], err);
    }
    mrc_options o = {.url = "ws://127.0.0.1:1/", .token = NULL};
    mrc_client *c;
    ck_assert_int_eq(mrc_client_new(&o, &c, NULL, 0), MRC_EINVAL);
    o.token = "t";
    o.url = "wss://127.0.0.1:1/";
    o.ca_file = "/nonexistent/ca.pem";
    char err[256];
    ck_assert_int_eq(mrc_client_new(&o, &c, err, sizeof err), MRC_ETLS);
    ck_assert(strstr(err, "/nonexistent/ca.pem"));
}
END_TEST

START_TEST(refused_connection_reports_close)
{
    int port = mr_test_free_port(); /* nobody listens there */
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    close_rec r;
    rec_init(&r);
    mrc_options o = {.url = url, .token = "t", .cb = {.close_cb = rec_close}, .user_data = &r};
    mrc_client *c;
    int64_t t0 = mr_test_now_ms();
    ck_assert_int_eq(mrc_client_new(&o, &c, NULL, 0), MRC_OK);
    /*
     * A request races the failure: it is either queued (and never answered)
     * or refused because the close was already reported.
     */
    int64_t id = mrc_join(c, "general", -1);
    ck_assert_msg(id > 0 || id == MRC_ECLOSED, "join: %lld", (long long)id);
    ck_assert_msg(rec_wait(&r, 10000), "no close callback for a refused connection");
    ck_assert_int_lt(mr_test_now_ms() - t0, 5000);
    ck_assert_int_eq(r.code, MRC_CLOSE_ABNORMAL);
    ck_assert_msg(strstr(r.reason, "cannot connect"), "%s", r.reason);
    ck_assert_int_eq(mrc_join(c, "general", -1), MRC_ECLOSED);
    mrc_client_free(c);
    ck_assert_int_eq(r.closes, 1);
}
END_TEST

START_TEST(unknown_host_reports_close)
{
    close_rec r;
    rec_init(&r);
    mrc_options o = {.url = "ws://no-such-host.invalid:8080/",
                     .token = "t",
                     .cb = {.close_cb = rec_close},
                     .user_data = &r};
    mrc_client *c;
    ck_assert_int_eq(mrc_client_new(&o, &c, NULL, 0), MRC_OK);
    ck_assert(rec_wait(&r, 15000));
    ck_assert_msg(strstr(r.reason, "resolve"), "%s", r.reason);
    mrc_client_free(c);
}
END_TEST

/* A TCP listener that accepts and then says nothing: the upgrade must time out, not hang. */
START_TEST(silent_server_times_out)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", ntohs(sa.sin_port));
    close_rec r;
    rec_init(&r);
    mrc_options o = {.url = url,
                     .token = "t",
                     .connect_timeout_s = 2,
                     .cb = {.close_cb = rec_close},
                     .user_data = &r};
    mrc_client *c;
    ck_assert_int_eq(mrc_client_new(&o, &c, NULL, 0), MRC_OK);
    ck_assert_msg(rec_wait(&r, 15000), "the client hung on a silent server");
    ck_assert_int_eq(r.code, MRC_CLOSE_ABNORMAL);
    mrc_client_free(c);
    close(lfd);
}
END_TEST

START_TEST(free_while_connecting)
{
    /* A listener with a full backlog is the closest thing to a connect that never completes. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 1), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", ntohs(sa.sin_port));
    close_rec r;
    rec_init(&r);
    mrc_options o = {.url = url, .token = "t", .cb = {.close_cb = rec_close}, .user_data = &r};
    mrc_client *c;
    ck_assert_int_eq(mrc_client_new(&o, &c, NULL, 0), MRC_OK);
    int64_t t0 = mr_test_now_ms();
    mrc_client_free(c);
    ck_assert_int_lt(mr_test_now_ms() - t0, 5000);
    ck_assert_int_eq(r.closes, 1);
    close(lfd);
}
END_TEST

START_TEST(cli_refused_is_clear_error)
{
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", mr_test_free_port());
    const char *send_args[] = {"send",  "--url", url,       "--secret", "s",
                               "--sub", "a",     "general", "hi",       NULL};
    char *out, *err;
    int64_t t0 = mr_test_now_ms();
    int rc = cli_run(tmpdir, "send-refused", send_args, 15000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_int_lt(mr_test_now_ms() - t0, 8000);
    ck_assert_int_eq(cli_count_lines(err), 1);
    ck_assert_msg(strstr(err, "meridian-cli: cannot connect to 127.0.0.1:"), "%s", err);
    free(out);
    free(err);
    const char *tail_args[] = {"tail", "--url", url, "--token", "t", "general", NULL};
    rc = cli_run(tmpdir, "tail-refused", tail_args, 15000, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "cannot connect"), "%s", err);
    free(out);
    free(err);
}
END_TEST

/*
 * A listener whose backlog is full: a connect to it never completes, so the
 * client's close cannot go through and mrc_client_free() falls back on its
 * grace period (MRC_FREE_GRACE_MS) before tearing the connection down.
 */
static int full_listener(int *port, int fill[2])
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa); /* in progress or queued */
    }
    return lfd;
}

/*
 * That grace period is a duration: with a wall clock stepped back an hour
 * (tests/support/mr_test_clockstep.c, preloaded into meridian-cli) it must
 * still end after a few seconds, so the CLI exits instead of hanging.
 */
START_TEST(close_wait_ignores_wall_clock_steps)
{
    int port, fill[2];
    int lfd = full_listener(&port, fill);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    const char *args[] = {"tail",      "--url", url,       "--token", "t",
                          "--timeout", "500",   "general", NULL};
    cli_proc p;
    mr_test_clockstep_env(3600);
    cli_start(&p, tmpdir, "tail-clockstep", args);
    mr_test_clockstep_env(0);
    int rc = cli_wait(&p, 20000);
    char *err = cli_err(&p);
    ck_assert_msg(rc == 1, "exit %d (still waiting for the close after 20 s?): %s", rc, err);
    ck_assert_msg(strstr(err, "could not connect and log in"), "%s", err);
    free(err);
    close(fill[0]);
    close(fill[1]);
    close(lfd);
}
END_TEST

static Suite *client_unit_suite(void)
{
    Suite *s = suite_create("client_unit");
    TCase *tc = tcase_create("token");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, token_verifies_with_relay_verifier);
    tcase_add_test(tc, token_defaults_all_rooms_one_hour);
    tcase_add_test(tc, token_secret_file_drops_newline);
    tcase_add_test(tc, token_usage_errors);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, mint_api);
    suite_add_tcase(s, tc);
    TCase *conn = tcase_create("connect_errors");
    tcase_add_checked_fixture(conn, setup, teardown);
    tcase_set_timeout(conn, 60);
    tcase_add_test(conn, bad_urls_rejected_up_front);
    tcase_add_test(conn, refused_connection_reports_close);
    tcase_add_test(conn, unknown_host_reports_close);
    tcase_add_test(conn, silent_server_times_out);
    tcase_add_test(conn, free_while_connecting);
    tcase_add_test(conn, cli_refused_is_clear_error);
    suite_add_tcase(s, conn);
    TCase *clock = tcase_create("clock");
    tcase_add_checked_fixture(clock, setup, teardown);
    tcase_set_timeout(clock, 60);
    tcase_add_test(clock, close_wait_ignores_wall_clock_steps);
    suite_add_tcase(s, clock);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_unit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
