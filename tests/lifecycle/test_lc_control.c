/*
 * meridian-control's life cycle against a real nats-server and PostgreSQL
 * (issue 15): READY once the API is bound, NATS connected and the schema
 * migrated; WATCHDOG from the libevent loop; a SIGHUP that reloads API keys
 * (inline and api_keys_file), the TLS certificate and the log level,
 * refuses what needs a restart, and changes nothing on a bad file;
 * STOPPING; and the exit codes (config error 2, start failure 1).
 */
#include "ctl_test_util.h"
#include "lc_notify.h"
#include "mr_test.h"
#include "mr_test_pg.h"
#include "mr_test_pki.h"

#include <check.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY1 "first-api-key-0123456789"
#define KEY2 "second-api-key-0123456789"
#define KEY3 "third-api-key-from-a-file-0123"

static mr_test_nats nats;
static mr_test_pg pg;
static ctl_proc ctl;
static lc_notify nt;
static char crt[700], key[700];

static void setup(void)
{
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", NULL);
    snprintf(crt, sizeof crt, "%s/tls.crt", ctl.dir);
    snprintf(key, sizeof key, "%s/tls.key", ctl.dir);
}

static void teardown(void)
{
    if (ctl.pid > 0)
        ctl_proc_stop(&ctl);
    ctl_proc_free(&ctl);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
    lc_notify_close(&nt);
}

/* The control config with `keys` (the api_keys/api_keys_file members) and `extra`. */
static void write_config(int http_port, const char *keys, const char *extra)
{
    char text[8192];
    snprintf(text, sizeof text,
             "{\"region\":\"eu-west\",\"regions\":[\"eu-west\"],\"nats\":[\"%s\"],"
             "\"postgres\":\"%s\",\"http_listen\":\"127.0.0.1:%d\","
             "\"admin_listen\":\"127.0.0.1:%d\",%s%s%s}",
             nats.url, pg.conninfo, http_port, ctl.admin_port, keys, extra[0] ? "," : "", extra);
    ck_assert_int_eq(mr_test_write_file(ctl.cfg, text), 0);
}

/* The status of a history request over TLS with `api_key`. */
static int api_status(const char *api_key)
{
    SSL_CTX *tls = SSL_CTX_new(TLS_client_method());
    char req[512];
    snprintf(req, sizeof req,
             "GET /v1/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
             api_key);
    int status = -1;
    int got = mr_test_http_pipelined(ctl.http_port, tls, req, 1, &status, 10000);
    SSL_CTX_free(tls);
    return got == 1 ? status : -1;
}

static void reload_and_wait(const char *outcome, int nth)
{
    ck_assert_int_eq(kill(ctl.pid, SIGHUP), 0);
    int64_t deadline = mr_test_now_ms() + 10000;
    while (lc_log_count(ctl.log, outcome) < nth) {
        ck_assert_msg(mr_test_alive(ctl.pid), "meridian-control died on SIGHUP; see %s", ctl.log);
        ck_assert_msg(mr_test_now_ms() < deadline, "no \"%s\" #%d in %s", outcome, nth, ctl.log);
        usleep(20 * 1000); /* between polls of the log */
    }
}

static void install_cert(const mr_test_pki *p)
{
    char *c = mr_test_read_file(p->cert), *k = mr_test_read_file(p->key);
    ck_assert_int_eq(mr_test_write_file(crt, c), 0);
    ck_assert_int_eq(mr_test_write_file(key, k), 0);
    free(c);
    free(k);
}

START_TEST(control_notifies_and_reloads_keys_and_certificate)
{
    char d1[700], d2[700], tls[2000], keys[1000];
    snprintf(d1, sizeof d1, "%s/pki1", ctl.dir);
    snprintf(d2, sizeof d2, "%s/pki2", ctl.dir);
    mkdir(d1, 0755);
    mkdir(d2, 0755);
    mr_test_pki p1, p2;
    mr_test_pki_make(&p1, d1, NULL, 0);
    mr_test_pki_make(&p2, d2, NULL, 0);
    install_cert(&p1);
    snprintf(tls, sizeof tls, "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"},\"log_level\":\"info\"",
             crt, key);
    write_config(ctl.http_port, "\"api_keys\":[\"" KEY1 "\"]", tls);
    lc_notify_open(&nt, ctl.dir, false, 400000);
    ctl_proc_spawn(&ctl, NULL);
    ck_assert_msg(lc_notify_expect(&nt, "READY=1", 30000), "no READY=1 (got %s); see %s", nt.seen,
                  ctl.log);
    /* READY means the API is bound and the schema is there. */
    ck_assert_int_eq(api_status(KEY1), 200);
    ck_assert_int_eq(api_status(KEY2), 401);
    ck_assert(lc_tls_peer_is(ctl.http_port, p1.cert, NULL, NULL));
    ck_assert_int_ge(lc_notify_count(&nt, "WATCHDOG=1", 1000), 3);

    /* New key, new certificate in place, and an http_listen that cannot move. */
    install_cert(&p2);
    int moved = mr_test_free_port();
    write_config(moved, "\"api_keys\":[\"" KEY2 "\"]", tls);
    lc_notify_drain(&nt);
    reload_and_wait("reload: applied", 1);
    ck_assert_msg(lc_notify_expect(&nt, "RELOADING=1", 2000), "no RELOADING=1: %s", nt.seen);
    ck_assert_msg(lc_notify_expect(&nt, "READY=1", 2000), "no READY=1 after reload: %s", nt.seen);
    ck_assert_int_eq(api_status(KEY2), 200);
    ck_assert_int_eq(api_status(KEY1), 401);
    ck_assert_msg(lc_tls_peer_is(ctl.http_port, p2.cert, NULL, NULL),
                  "new connections do not get the new certificate; see %s", ctl.log);
    ck_assert_msg(lc_log_count(ctl.log, "reload: http_listen") == 1,
                  "no refusal naming http_listen; see %s", ctl.log);
    ck_assert_int_ne(mr_test_wait_port("127.0.0.1", moved, 300), 0);

    /* api_keys_file is read again on every reload. */
    char file[700];
    snprintf(file, sizeof file, "%s/api_keys", ctl.dir);
    ck_assert_int_eq(mr_test_write_file(file, "# keys\n" KEY3 "\n"), 0);
    snprintf(keys, sizeof keys, "\"api_keys_file\":\"%s\"", file);
    write_config(ctl.http_port, keys, tls);
    reload_and_wait("reload: applied", 2);
    ck_assert_int_eq(api_status(KEY3), 200);
    ck_assert_int_eq(api_status(KEY2), 401);
    ck_assert_int_eq(mr_test_write_file(file, KEY1 "\n"), 0);
    reload_and_wait("reload: applied", 3);
    ck_assert_int_eq(api_status(KEY1), 200);
    ck_assert_int_eq(api_status(KEY3), 401);

    /* A bad file changes nothing: not JSON; a key file that is gone; a key too short. */
    ck_assert_int_eq(mr_test_write_file(ctl.cfg, "{\"region\":"), 0);
    reload_and_wait("reload: refused", 1);
    unlink(file);
    write_config(ctl.http_port, keys, tls);
    reload_and_wait("reload: refused", 2);
    write_config(ctl.http_port, "\"api_keys\":[\"short\"]", tls);
    reload_and_wait("reload: refused", 3);
    ck_assert_int_eq(api_status(KEY1), 200);
    ck_assert(lc_tls_peer_is(ctl.http_port, p2.cert, NULL, NULL));

    /* A unix datagram socket queues about ten messages: read what waits, as systemd does. */
    lc_notify_drain(&nt);
    ck_assert_int_eq(kill(ctl.pid, SIGTERM), 0);
    ck_assert_msg(lc_notify_expect(&nt, "STOPPING=1", 5000), "no STOPPING=1: %s", nt.seen);
    ck_assert_int_eq(lc_exit_status(ctl.pid, 20000), 0);
    ctl.pid = 0;
}
END_TEST

static int run_control(bool check)
{
    char out[700];
    snprintf(out, sizeof out, "%s/run.log", ctl.dir);
    char *argv[] = {CTL_BINARY, "--config", ctl.cfg, check ? "--check" : NULL, NULL};
    return lc_run(argv, out);
}

static bool run_log_has(const char *needle)
{
    char out[700];
    snprintf(out, sizeof out, "%s/run.log", ctl.dir);
    return lc_log_count(out, needle) > 0;
}

START_TEST(control_exit_codes_and_check)
{
    /* Config errors: 2. */
    write_config(ctl.http_port, "\"api_keys\":[\"" KEY1 "\"]", "\"no_such_key\":1");
    ck_assert_int_eq(run_control(true), 2);
    ck_assert_int_eq(run_control(false), 2);
    ck_assert(run_log_has("no_such_key"));
    write_config(ctl.http_port, "\"api_keys\":[\"short\"]", "");
    ck_assert_int_eq(run_control(false), 2);

    /* --check: a conninfo keyword libpq does not know. */
    char text[4096];
    snprintf(text, sizeof text,
             "{\"region\":\"eu-west\",\"nats\":[\"%s\"],\"postgres\":\"host=127.0.0.1 "
             "dbnmae=meridian\",\"http_listen\":\"127.0.0.1:%d\",\"admin_listen\":\"127.0.0.1:%d\","
             "\"api_keys\":[\"" KEY1 "\"]}",
             nats.url, ctl.http_port, ctl.admin_port);
    ck_assert_int_eq(mr_test_write_file(ctl.cfg, text), 0);
    ck_assert_int_eq(run_control(true), 2);
    ck_assert(run_log_has("dbnmae"));
    /* --check: history kept for less time than the stream keeps messages. */
    write_config(ctl.http_port, "\"api_keys\":[\"" KEY1 "\"]",
                 "\"retention_days\":1,\"stream\":{\"max_age_s\":172800}");
    ck_assert_int_eq(run_control(true), 2);
    ck_assert(run_log_has("retention_days"));
    /* --check: an address this host does not have. */
    write_config(ctl.http_port, "\"api_keys\":[\"" KEY1 "\"]", "\"admin_listen\":\"192.0.2.1:9\"");
    ck_assert_int_eq(run_control(true), 2);
    ck_assert(run_log_has("admin_listen"));
    /* --check: a certificate that is not there. */
    write_config(ctl.http_port, "\"api_keys\":[\"" KEY1 "\"]",
                 "\"tls\":{\"cert\":\"/nonexistent/tls.crt\",\"key\":\"/nonexistent/tls.key\"}");
    ck_assert_int_eq(run_control(true), 2);
    ck_assert(run_log_has("/nonexistent/tls.crt"));

    /* The API port taken: a start failure, 1; --check only notes it. */
    write_config(ctl.http_port, "\"api_keys\":[\"" KEY1 "\"]", "");
    ck_assert_int_eq(run_control(true), 0);
    int fd = lc_listen_on(ctl.http_port);
    ck_assert_int_eq(run_control(false), 1);
    ck_assert_int_eq(run_control(true), 0);
    ck_assert(run_log_has("in use"));
    close(fd);
    /* The admin port taken: 1. */
    fd = lc_listen_on(ctl.admin_port);
    ck_assert_int_eq(run_control(false), 1);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lifecycle_control");
    TCase *tc = mr_test_case(s, "control", setup, teardown, 120);
    tcase_add_test(tc, control_notifies_and_reloads_keys_and_certificate);
    tcase_add_test(tc, control_exit_codes_and_check);
    return mr_test_run(s);
}
