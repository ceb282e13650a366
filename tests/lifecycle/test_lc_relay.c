/*
 * The relay's life cycle against real processes (issue 15, "Lifecycle like
 * nginx and NATS"): what systemd hears on its notify socket (READY after
 * the listener and NATS, WATCHDOG from the service loop, RELOADING and
 * READY around a reload, STOPPING), what a SIGHUP reloads and what it
 * refuses, two token secrets at once with key ids, a certificate swap
 * served to new connections, and the exit codes. Every wait is a poll with
 * a deadline.
 */
#include "lc_notify.h"
#include "mr_test.h"
#include "mr_test_pki.h"
#include "mr_test_relay.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET_B "second-secret-for-rotation-0123456789"

static mr_test_nats nats;
static mr_test_relay rp;
static lc_notify nt;
static char *tmp;

/* The relay's config with `auth` (a JSON object) and `extra` top-level members (its own
 * "limits" replaces the default one). */
static void write_config(const char *auth, const char *extra)
{
    char text[8192];
    snprintf(text, sizeof text,
             "{\"region\":\"test\",\"node_id\":\"relay-1\",\"listen\":\"127.0.0.1:%d\","
             "\"admin_listen\":\"127.0.0.1:%d\",\"nats\":[\"%s\"],\"auth\":%s,"
             "\"jetstream\":false,\"drain_grace_ms\":500,\"log_level\":\"info\"%s%s%s}",
             rp.port, rp.admin_port, nats.url, auth,
             strstr(extra, "\"limits\"") ? "" : ",\"limits\":{\"max_connections_per_ip\":0}",
             extra[0] ? "," : "", extra);
    ck_assert_int_eq(mr_test_write_file(rp.cfg, text), 0);
}

static void setup_ports(void)
{
    tmp = mr_test_tmpdir("lcrelay");
    rp.port = mr_test_free_port();
    rp.admin_port = mr_test_free_port();
    snprintf(rp.cfg, sizeof rp.cfg, "%s/relay.json", tmp);
    snprintf(rp.log, sizeof rp.log, "%s/relay.log", tmp);
}

static void setup(void)
{
    setup_ports();
    mr_test_nats_start(&nats, false);
}

static void teardown(void)
{
    mr_test_relay_stop_clean(&rp);
    mr_test_nats_stop(&nats);
    lc_notify_close(&nt);
}

static void spawn_relay(void)
{
    char *argv[] = {MERIDIAN_RELAY_BIN, "--config", rp.cfg, NULL};
    rp.pid = mr_test_spawn(argv, rp.log);
}

/* SIGHUP, then wait for the reload's outcome line (the nth of its kind in the log). */
static void reload_and_wait(const char *outcome, int nth)
{
    ck_assert_int_eq(kill(rp.pid, SIGHUP), 0);
    int64_t deadline = mr_test_now_ms() + 10000;
    while (lc_log_count(rp.log, outcome) < nth) {
        ck_assert_msg(mr_test_alive(rp.pid), "the relay died on SIGHUP; see %s", rp.log);
        ck_assert_msg(mr_test_now_ms() < deadline, "no \"%s\" #%d in %s", outcome, nth, rp.log);
        usleep(20 * 1000); /* between polls of the log */
    }
}

/* Connect and say hello with `token`; the first frame that answers (welcome or error). */
static char *hello(mr_ws *ws, const char *token)
{
    ck_assert_int_eq(mr_ws_connect(ws, "127.0.0.1", rp.port, NULL), 101);
    char frame[2048];
    snprintf(frame, sizeof frame, "{\"type\":\"hello\",\"id\":1,\"token\":\"%s\"}", token);
    ck_assert_int_eq(mr_ws_send_text(ws, frame), 0);
    char *f = mr_ws_expect(ws, "\"id\":1", 5000);
    ck_assert_msg(f != NULL, "no answer to hello; see %s", rp.log);
    return f;
}

static void hello_ok(mr_ws *ws, const char *secret, const char *kid, const char *sub)
{
    char *t = lc_token(secret, kid, sub);
    char *f = hello(ws, t);
    ck_assert_msg(strstr(f, "\"type\":\"welcome\"") != NULL, "%s (kid %s): %s", sub,
                  kid ? kid : "none", f);
    free(f);
    free(t);
}

static void hello_refused(const char *secret, const char *kid, const char *why)
{
    mr_ws ws;
    char *t = lc_token(secret, kid, "refused");
    char *f = hello(&ws, t);
    ck_assert_msg(strstr(f, "\"type\":\"error\"") && strstr(f, why), "kid %s: %s",
                  kid ? kid : "none", f);
    free(f);
    free(t);
    mr_ws_close(&ws);
}

/* `from` publishes into room r and `to` gets it: both sessions are alive. */
static void still_connected(mr_ws *from, mr_ws *to, const char *mid)
{
    mr_test_publish(from, "r", mid, "{\"n\":1}");
    char *m = mr_test_next_message(to, 5000);
    ck_assert_msg(m && strstr(m, mid), "session lost its room after the reload; see %s", rp.log);
    free(m);
}

/* ---- systemd: READY, WATCHDOG from the service loop, RELOADING, STOPPING ---- */

static char fifo[700];

START_TEST(relay_tells_systemd_ready_watchdog_reload_stop)
{
    lc_notify_open(&nt, tmp, false, 400000);
    char www[600], extra[800];
    snprintf(www, sizeof www, "%s/www", tmp);
    ck_assert_int_eq(mkdir(www, 0755), 0);
    snprintf(fifo, sizeof fifo, "%s/stall", www);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    snprintf(extra, sizeof extra, "\"static_dir\":\"%s\"", www);
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", extra);
    spawn_relay();
    ck_assert_msg(lc_notify_expect(&nt, "READY=1", 15000), "no READY=1 (got %s); see %s", nt.seen,
                  rp.log);
    /* READY comes after the listener is bound and NATS is connected. */
    mr_ws ws;
    ck_assert_int_eq(mr_ws_connect(&ws, "127.0.0.1", rp.port, NULL), 101);
    mr_ws_close(&ws);
    char *body;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", rp.admin_port, "/readyz", &body), 200);
    free(body);
    /* WATCHDOG_USEC 400 ms: at least one ping per half of it from a running loop. */
    ck_assert_int_ge(lc_notify_count(&nt, "WATCHDOG=1", 1000), 3);

    /* A stuck service loop (lws opens a FIFO with a blocking open()) stops the pings. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rp.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char req[] = "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    /* The loop is stuck once /readyz says so; a ping already on its way may still arrive. */
    int64_t deadline = mr_test_now_ms() + 15000;
    for (;;) {
        mr_test_http_get("127.0.0.1", rp.admin_port, "/readyz", &body);
        bool stalled = body && strstr(body, "\"loop\":\"stalled\"") != NULL;
        free(body);
        if (stalled)
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "the loop never stalled");
        usleep(50 * 1000); /* between polls */
    }
    lc_notify_drain(&nt);
    ck_assert_int_eq(lc_notify_count(&nt, "WATCHDOG=1", 1000), 0);
    for (deadline = mr_test_now_ms() + 10000; mr_test_now_ms() < deadline;) {
        int wfd = open(fifo, O_WRONLY | O_NONBLOCK);
        if (wfd >= 0)
            close(wfd);
        if (lc_notify_expect(&nt, "WATCHDOG=1", 100))
            break;
    }
    close(fd);
    ck_assert_int_ge(lc_notify_count(&nt, "WATCHDOG=1", 600), 1);

    /* SIGHUP: RELOADING=1 (with the monotonic time systemd asks for), then READY=1. */
    lc_notify_drain(&nt);
    ck_assert_int_eq(kill(rp.pid, SIGHUP), 0);
    ck_assert_msg(lc_notify_expect(&nt, "RELOADING=1", 5000), "no RELOADING=1: %s", nt.seen);
    ck_assert_ptr_nonnull(strstr(nt.seen, "MONOTONIC_USEC="));
    ck_assert_msg(lc_notify_expect(&nt, "READY=1", 5000), "no READY=1 after the reload: %s",
                  nt.seen);
    ck_assert(mr_test_alive(rp.pid));

    /* SIGTERM: STOPPING=1, then a clean exit. */
    lc_notify_drain(&nt);
    ck_assert_int_eq(kill(rp.pid, SIGTERM), 0);
    ck_assert_msg(lc_notify_expect(&nt, "STOPPING=1", 5000), "no STOPPING=1: %s", nt.seen);
    ck_assert_int_eq(lc_exit_status(rp.pid, 15000), 0);
    rp.pid = 0;
}
END_TEST

/* The abstract socket namespace ("@name"), as systemd may use it. */
START_TEST(relay_notifies_an_abstract_socket)
{
    lc_notify_open(&nt, tmp, true, 0);
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "");
    spawn_relay();
    ck_assert_msg(lc_notify_expect(&nt, "READY=1", 15000), "no READY=1 on %s (got %s); see %s",
                  nt.name, nt.seen, rp.log);
    /* No WATCHDOG_USEC: no pings. */
    ck_assert_int_eq(lc_notify_count(&nt, "WATCHDOG=1", 500), 0);
}
END_TEST

/* ---- SIGHUP: token secrets ---- */

START_TEST(reload_rotates_the_token_secret_without_dropping_sessions)
{
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "");
    spawn_relay();
    mr_test_relay_wait_ready(&rp, 200, 15000);
    mr_ws old1, new1;
    hello_ok(&old1, MR_TEST_SECRET, NULL, "before");
    mr_test_join(&old1, "r");

    /* Two secrets with ids: the new one signs new tokens, the old one still verifies. */
    write_config("{\"secrets\":[{\"kid\":\"2026-12\",\"secret\":\"" SECRET_B "\"},"
                 "{\"kid\":\"2026-06\",\"secret\":\"" MR_TEST_SECRET "\"}]}",
                 "");
    reload_and_wait("reload: applied", 1);
    hello_ok(&new1, SECRET_B, "2026-12", "after");
    mr_test_join(&new1, "r");
    mr_ws w;
    hello_ok(&w, MR_TEST_SECRET, "2026-06", "old-kid");
    mr_ws_close(&w);
    hello_ok(&w, MR_TEST_SECRET, NULL, "no-kid"); /* no kid: either secret */
    mr_ws_close(&w);
    hello_ok(&w, SECRET_B, NULL, "no-kid-new");
    mr_ws_close(&w);
    /* The kid picks the secret: the old secret under the new id is refused. */
    hello_refused(MR_TEST_SECRET, "2026-12", "signature");
    hello_refused(SECRET_B, "1999-01", "key id");
    /* The session opened before the reload is still there. */
    still_connected(&new1, &old1, "m-after-rotation");

    /* The old secret retired: its tokens are refused, open sessions stay. */
    write_config("{\"secrets\":[{\"kid\":\"2026-12\",\"secret\":\"" SECRET_B "\"}]}", "");
    reload_and_wait("reload: applied", 2);
    hello_refused(MR_TEST_SECRET, NULL, "signature");
    hello_ok(&w, SECRET_B, "2026-12", "later");
    mr_ws_close(&w);
    still_connected(&new1, &old1, "m-after-retirement");
    mr_ws_close(&old1);
    mr_ws_close(&new1);
}
END_TEST

/* secret_files: the files are read again on every reload (a rotation rewrites one). */
START_TEST(reload_reads_secret_files_again)
{
    char f1[700], f2[700], auth[2000];
    snprintf(f1, sizeof f1, "%s/a.secret", tmp);
    snprintf(f2, sizeof f2, "%s/b.secret", tmp);
    ck_assert_int_eq(mr_test_write_file(f1, MR_TEST_SECRET "\n"), 0);
    ck_assert_int_eq(mr_test_write_file(f2, SECRET_B "\n"), 0);
    snprintf(auth, sizeof auth,
             "{\"secret_files\":[{\"kid\":\"a\",\"secret_file\":\"%s\"},\"%s\"]}", f1, f2);
    write_config(auth, "");
    spawn_relay();
    mr_test_relay_wait_ready(&rp, 200, 15000);
    mr_ws w;
    hello_ok(&w, MR_TEST_SECRET, "a", "a");
    mr_ws_close(&w);
    /* A key without an id takes tokens whose kid names no key. */
    hello_ok(&w, SECRET_B, "whatever", "b");
    mr_ws_close(&w);
    ck_assert_int_eq(mr_test_write_file(f1, "rotated-secret-abcdefghijklmnopqrstuvwxyz\n"), 0);
    reload_and_wait("reload: applied", 1);
    hello_ok(&w, "rotated-secret-abcdefghijklmnopqrstuvwxyz", "a", "rotated");
    mr_ws_close(&w);
    hello_refused(MR_TEST_SECRET, "a", "signature");
}
END_TEST

/* ---- SIGHUP: what cannot change, and files that are not valid ---- */

START_TEST(reload_refuses_listen_and_bad_files_change_nothing)
{
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "");
    spawn_relay();
    mr_test_relay_wait_ready(&rp, 200, 15000);
    mr_ws held;
    hello_ok(&held, MR_TEST_SECRET, NULL, "held");
    mr_test_join(&held, "r");

    /* listen cannot move without a restart: refused with the key named, the rest applies. */
    int old_port = rp.port, new_port = mr_test_free_port();
    rp.port = new_port;
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "\"drain_batch\":50");
    rp.port = old_port;
    reload_and_wait("reload: applied", 1);
    ck_assert_msg(lc_log_wait(rp.log, "listen", 100) &&
                      lc_log_count(rp.log, "needs a restart") >= 1,
                  "no refusal naming listen; see %s", rp.log);
    char *log = mr_test_read_file(rp.log);
    const char *line = strstr(log, "needs a restart");
    ck_assert_ptr_nonnull(line);
    while (line > log && line[-1] != '\n')
        line--;
    ck_assert_msg(strncmp(strstr(line, "reload: "), "reload: listen", 14) == 0,
                  "refusal does not name the key: %.200s", line);
    free(log);
    ck_assert_int_ne(mr_test_wait_port("127.0.0.1", new_port, 300), 0);
    mr_ws w;
    hello_ok(&w, MR_TEST_SECRET, NULL, "still-serving");
    mr_test_join(&w, "r");
    still_connected(&w, &held, "m-after-refusal");
    mr_ws_close(&w);

    /* Not JSON; an unknown key next to a new secret; a secret file that is not there: each
     * is refused whole and logged, and the old secret keeps working. */
    const char *bad[] = {
        "{\"region\":",
        NULL,
        NULL,
    };
    char text[4096];
    snprintf(text, sizeof text,
             "{\"region\":\"test\",\"node_id\":\"relay-1\",\"listen\":\"127.0.0.1:%d\","
             "\"admin_listen\":\"127.0.0.1:%d\",\"nats\":[\"%s\"],\"jetstream\":false,"
             "\"auth\":{\"secret\":\"" SECRET_B "\"},\"no_such_key\":1}",
             rp.port, rp.admin_port, nats.url);
    bad[1] = text;
    char text2[4096];
    snprintf(text2, sizeof text2,
             "{\"region\":\"test\",\"node_id\":\"relay-1\",\"listen\":\"127.0.0.1:%d\","
             "\"admin_listen\":\"127.0.0.1:%d\",\"nats\":[\"%s\"],\"jetstream\":false,"
             "\"auth\":{\"secrets\":[{\"kid\":\"x\",\"secret\":\"" SECRET_B "\"},"
             "{\"kid\":\"y\",\"secret_file\":\"%s/missing\"}]}}",
             rp.port, rp.admin_port, nats.url, tmp);
    bad[2] = text2;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(mr_test_write_file(rp.cfg, bad[i]), 0);
        reload_and_wait("reload: refused", i + 1);
        hello_ok(&w, MR_TEST_SECRET, NULL, "unchanged");
        mr_ws_close(&w);
        hello_refused(SECRET_B, NULL, "signature");
    }
    log = mr_test_read_file(rp.log);
    ck_assert_msg(strstr(log, "no_such_key") && strstr(log, "missing"),
                  "the refusals do not say why; see %s", rp.log);
    free(log);
    hello_ok(&w, MR_TEST_SECRET, NULL, "last");
    mr_test_join(&w, "r");
    still_connected(&w, &held, "m-after-bad-files");
    mr_ws_close(&w);
    mr_ws_close(&held);
}
END_TEST

/* ---- SIGHUP: a new certificate for new connections ---- */

START_TEST(reload_serves_a_new_certificate_to_new_connections)
{
    char d1[700], d2[700], crt[700], key[700], extra[2000];
    snprintf(d1, sizeof d1, "%s/pki1", tmp);
    snprintf(d2, sizeof d2, "%s/pki2", tmp);
    mkdir(d1, 0755);
    mkdir(d2, 0755);
    mr_test_pki p1, p2;
    mr_test_pki_make(&p1, d1, NULL, 0);
    mr_test_pki_make(&p2, d2, NULL, 0);
    snprintf(crt, sizeof crt, "%s/tls.crt", tmp);
    snprintf(key, sizeof key, "%s/tls.key", tmp);
    char *c1 = mr_test_read_file(p1.cert), *k1 = mr_test_read_file(p1.key);
    char *c2 = mr_test_read_file(p2.cert), *k2 = mr_test_read_file(p2.key);
    ck_assert_int_eq(mr_test_write_file(crt, c1), 0);
    ck_assert_int_eq(mr_test_write_file(key, k1), 0);
    snprintf(extra, sizeof extra, "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"}", crt, key);
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", extra);
    spawn_relay();
    mr_test_relay_wait_ready(&rp, 200, 15000);
    void *held = NULL;
    int held_fd = -1;
    ck_assert(lc_tls_peer_is(rp.port, p1.cert, &held, &held_fd));

    /* The renewal rewrites the files in place, then reloads. */
    ck_assert_int_eq(mr_test_write_file(crt, c2), 0);
    ck_assert_int_eq(mr_test_write_file(key, k2), 0);
    reload_and_wait("reload: applied", 1);
    ck_assert_msg(lc_tls_peer_is(rp.port, p2.cert, NULL, NULL),
                  "a new connection does not get the new certificate; see %s", rp.log);
    /* The connection made before the swap still works (an HTTP request over it). */
    const char get[] = "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(SSL_write(held, get, sizeof get - 1), (int)(sizeof get - 1));
    char buf[256];
    int n = SSL_read(held, buf, sizeof buf - 1);
    ck_assert_msg(n > 0, "the connection opened before the swap was dropped");
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 "));
    lc_tls_close(held, held_fd);

    /* A key that is not the certificate's: refused whole, the served certificate stays. */
    ck_assert_int_eq(mr_test_write_file(crt, c1), 0);
    reload_and_wait("reload: refused", 1);
    ck_assert(lc_tls_peer_is(rp.port, p2.cert, NULL, NULL));
    ck_assert_msg(lc_log_wait(rp.log, "does not match", 100), "no reason logged; see %s", rp.log);
    free(c1);
    free(k1);
    free(c2);
    free(k2);
}
END_TEST

/* ---- SIGHUP: limits apply to what comes next, sessions stay ---- */

START_TEST(reload_applies_limits_without_closing_sessions)
{
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "");
    spawn_relay();
    mr_test_relay_wait_ready(&rp, 200, 15000);
    mr_ws a, b, c;
    hello_ok(&a, MR_TEST_SECRET, NULL, "a");
    mr_test_join(&a, "r");
    hello_ok(&b, MR_TEST_SECRET, NULL, "b");
    mr_test_join(&b, "r");
    /* Two connections per address from now on: both open ones stay, a third is refused. */
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}",
                 "\"limits\":{\"max_connections_per_ip\":2}");
    reload_and_wait("reload: applied", 1);
    ck_assert_int_ne(mr_ws_connect(&c, "127.0.0.1", rp.port, NULL), 101);
    mr_ws_close(&c);
    still_connected(&a, &b, "m-after-limit");
    /* Back to no limit: the third comes in. */
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "");
    reload_and_wait("reload: applied", 2);
    hello_ok(&c, MR_TEST_SECRET, NULL, "c");
    mr_ws_close(&c);
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

/* ---- exit codes and --check ---- */

static int run_relay(const char *cfg, bool check)
{
    char out[700];
    snprintf(out, sizeof out, "%s/run.log", tmp);
    char *argv[] = {MERIDIAN_RELAY_BIN, "--config", (char *)cfg, check ? "--check" : NULL, NULL};
    return lc_run(argv, out);
}

static bool run_log_has(const char *needle)
{
    char out[700];
    snprintf(out, sizeof out, "%s/run.log", tmp);
    return lc_log_count(out, needle) > 0;
}

START_TEST(exit_codes_config_error_2_start_failure_1)
{
    /* A config error: 2, with and without --check. */
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "\"no_such_key\":1");
    ck_assert_int_eq(run_relay(rp.cfg, true), 2);
    ck_assert_int_eq(run_relay(rp.cfg, false), 2);
    ck_assert(run_log_has("no_such_key"));

    /* The WebSocket port taken: a start failure, 1. */
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "");
    int fd = lc_listen_on(rp.port);
    ck_assert_int_eq(run_relay(rp.cfg, false), 1);
    /* --check sees the port in use but does not call it a configuration error. */
    ck_assert_int_eq(run_relay(rp.cfg, true), 0);
    ck_assert(run_log_has("in use"));
    close(fd);
    /* The admin port taken: 1 too. */
    fd = lc_listen_on(rp.admin_port);
    ck_assert_int_eq(run_relay(rp.cfg, false), 1);
    close(fd);
    /* A clean stop: 0. */
    spawn_relay();
    mr_test_relay_wait_ready(&rp, 200, 15000);
    mr_test_relay_stop_clean(&rp);
}
END_TEST

START_TEST(check_finds_what_start_would_trip_over)
{
    char d1[700], d2[700], extra[2000];
    snprintf(d1, sizeof d1, "%s/pki1", tmp);
    snprintf(d2, sizeof d2, "%s/pki2", tmp);
    mkdir(d1, 0755);
    mkdir(d2, 0755);
    mr_test_pki p1, p2;
    mr_test_pki_make(&p1, d1, NULL, 0);
    mr_test_pki_make(&p2, d2, NULL, 0);
    /* A good one first. */
    snprintf(extra, sizeof extra, "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"}", p1.cert, p1.key);
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", extra);
    ck_assert_int_eq(run_relay(rp.cfg, true), 0);
    /* A key that is not the certificate's. */
    snprintf(extra, sizeof extra, "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"}", p1.cert, p2.key);
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", extra);
    ck_assert_int_eq(run_relay(rp.cfg, true), 2);
    ck_assert(run_log_has("does not match"));
    /* A certificate that cannot be read. */
    snprintf(extra, sizeof extra, "\"tls\":{\"cert\":\"%s/none.crt\",\"key\":\"%s\"}", tmp, p1.key);
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", extra);
    ck_assert_int_eq(run_relay(rp.cfg, true), 2);
    ck_assert(run_log_has("none.crt"));
    /* An address this host does not have (TEST-NET-1). */
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}", "\"admin_listen\":\"192.0.2.1:9\"");
    ck_assert_int_eq(run_relay(rp.cfg, true), 2);
    ck_assert(run_log_has("admin_listen"));
    /* A secret too short for HS256 (32 bytes at least). */
    write_config("{\"secret\":\"short-secret\"}", "");
    ck_assert_int_eq(run_relay(rp.cfg, true), 2);
    ck_assert(run_log_has("32 bytes"));
    /* Two keys with one id. */
    write_config("{\"secrets\":[{\"kid\":\"a\",\"secret\":\"" MR_TEST_SECRET
                 "\"},{\"kid\":\"a\",\"secret\":\"" SECRET_B "\"}]}",
                 "");
    ck_assert_int_eq(run_relay(rp.cfg, true), 2);
    ck_assert(run_log_has("kid"));
    /* The stream's duplicate window longer than its age: NATS would refuse the stream. */
    write_config("{\"secret\":\"" MR_TEST_SECRET "\"}",
                 "\"stream\":{\"max_age_s\":60,\"duplicate_window_s\":120}");
    ck_assert_int_eq(run_relay(rp.cfg, true), 2);
    ck_assert(run_log_has("duplicate_window_s"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lifecycle_relay");
    TCase *tc = mr_test_case(s, "notify", setup, teardown, 90);
    tcase_add_test(tc, relay_tells_systemd_ready_watchdog_reload_stop);
    tcase_add_test(tc, relay_notifies_an_abstract_socket);
    tc = mr_test_case(s, "reload", setup, teardown, 90);
    tcase_add_test(tc, reload_rotates_the_token_secret_without_dropping_sessions);
    tcase_add_test(tc, reload_reads_secret_files_again);
    tcase_add_test(tc, reload_refuses_listen_and_bad_files_change_nothing);
    tcase_add_test(tc, reload_serves_a_new_certificate_to_new_connections);
    tcase_add_test(tc, reload_applies_limits_without_closing_sessions);
    tc = mr_test_case(s, "exit", setup, teardown, 90);
    tcase_add_test(tc, exit_codes_config_error_2_start_failure_1);
    tcase_add_test(tc, check_finds_what_start_would_trip_over);
    return mr_test_run(s);
}
