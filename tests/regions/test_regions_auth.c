/*
 * The daemons against a locked nats-server (TLS with client certificates,
 * one nkey user per role and region with Meridian's permissions, as
 * meridian-regions renders them): relays with the right credentials carry
 * messages between regions; bad credentials, an untrusted CA and a missing
 * client certificate are reported as what they are, in the log and in
 * /readyz, not as "not reachable"; a password is never logged, and a URL
 * with one in it is refused. The control plane reports a refused credential
 * the same way.
 */
#include "mr_nats_opts.h"
#include "mr_nkey.h"
#include "mr_test.h"
#include "mr_test_pki.h"
#include "mr_test_relay.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#ifndef MERIDIAN_RELAY_BIN
#error "MERIDIAN_RELAY_BIN must be defined by the build"
#endif

static const char *const regions[] = {"eu-west", "us-east"};
/* The binaries under test; MERIDIAN_RELAY_BIN / MERIDIAN_CONTROL_BIN in the environment
 * override the build's (to run these tests against another build). */
static const char *relay_bin = MERIDIAN_RELAY_BIN, *control_bin = MERIDIAN_CONTROL_BIN;
static mr_test_nats nats;
static char *dir;

static void setup(void)
{
    mr_test_nats_start_locked(&nats, true, regions, 2);
    dir = mr_test_tmpdir("regions-auth");
}

static void teardown(void)
{
    mr_test_nats_stop(&nats);
    free(dir);
}

/* Poll `path` until it contains `needle`; returns the file's text (malloc'd) or fails. */
static char *wait_log(const char *path, const char *needle, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        char *text = mr_test_read_file(path);
        if (strstr(text, needle))
            return text;
        ck_assert_msg(mr_test_now_ms() < deadline, "%s never said \"%s\":\n%s", path, needle, text);
        free(text);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Poll the relay's /readyz until its body contains `needle`; returns the status. */
static int wait_ready_body(mr_test_relay *rp, const char *needle, char **body_out)
{
    int64_t deadline = mr_test_now_ms() + 10000;
    for (;;) {
        char *body = NULL;
        int st = mr_test_http_get("127.0.0.1", rp->admin_port, "/readyz", &body);
        if (body && strstr(body, needle)) {
            *body_out = body;
            return st;
        }
        ck_assert_msg(mr_test_now_ms() < deadline, "/readyz never said \"%s\": %d %s", needle, st,
                      body ? body : "");
        free(body);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* A relay of `region` with `nats_json`; started without waiting for /readyz 200. */
static void relay_spawn(mr_test_relay *rp, const char *node, const char *region,
                        const char *nats_json)
{
    mr_test_relay_config(rp, dir, region, node, nats_json, "", "");
    char *argv[] = {(char *)relay_bin, "--config", rp->cfg, NULL};
    rp->pid = mr_test_spawn(argv, rp->log);
    /*
     * The relay listens once its first NATS attempts are over: with a server
     * that refuses it in the TLS or auth handshake that is up to
     * MR_NATS_CONNECT_TRIES attempts of up to libnats' 2 s connect timeout
     * each, which took more than 10 s on a loaded machine.
     */
    ck_assert_msg(mr_test_wait_port("127.0.0.1", rp->admin_port, 30000) == 0,
                  "relay did not listen; see %s", rp->log);
}

/*
 * A `nats` value for `role` in `region` with its own seed (or `seed_file`)
 * and the TLS members `tls` (NULL: the test CA and client certificate).
 */
static char *nats_value(const char *role, const char *region, const char *tls,
                        const char *seed_file)
{
    char seed[700], deftls[2048];
    if (seed_file)
        snprintf(seed, sizeof seed, "%s", seed_file);
    else
        snprintf(seed, sizeof seed, "%s/%s-%s.nk", nats.dir, role, region);
    snprintf(deftls, sizeof deftls, "\"ca\":\"%s\",\"cert\":\"%s\",\"key\":\"%s\"", nats.pki->ca,
             nats.pki->client_cert, nats.pki->client_key);
    char *out = malloc(4096);
    snprintf(out, 4096, "{\"urls\":[\"%s\"],\"nkey_seed_file\":\"%s\",\"tls\":{%s}}", nats.url,
             seed, tls ? tls : deftls);
    return out;
}

/* A valid seed the server does not know, in dir/stranger.nk. */
static void stranger_seed(char *path, size_t n)
{
    char seed[MR_NKEY_SEED_LEN + 1], pub[MR_NKEY_PUBLIC_LEN + 1], text[100];
    ck_assert_int_eq(mr_nkey_generate(seed, pub), 0);
    snprintf(path, n, "%s/stranger.nk", dir);
    snprintf(text, sizeof text, "%s\n", seed);
    ck_assert_int_eq(mr_test_write_file(path, text), 0);
}

/*
 * A relay with `nats_json` is not ready, and both /readyz and its log give
 * `reason` (and `detail`, when not NULL) as why, never "not reachable".
 */
static void expect_refusal(const char *nats_json, const char *reason, const char *detail)
{
    mr_test_relay rp;
    relay_spawn(&rp, "eu-west-1", "eu-west", nats_json);
    char *body;
    ck_assert_int_eq(wait_ready_body(&rp, reason, &body), 503);
    ck_assert_msg(strstr(body, "\"nats\":\"disconnected\""), "%s", body);
    ck_assert_msg(!detail || strstr(body, detail), "%s lacks %s", body, detail);
    free(body);
    char want[256];
    snprintf(want, sizeof want, "nats: cannot connect: %s", reason);
    char *log = wait_log(rp.log, want, 10000);
    ck_assert_msg(!strstr(log, "not reachable"), "reported as unreachable:\n%s", log);
    free(log);
    mr_test_relay_stop_clean(&rp);
}

/* libnats 3.4 base64-encodes the nonce's signature with a helper that
 * returns nothing for input whose first byte is zero, so one connect in 256
 * went out with an nkey and no signature ("Signature missing" on the
 * server), was refused, and libnats, retrying in the background, gave the
 * connection up: a relay or agent then stayed unready until restarted
 * (multiregion failed on it now and then). Every one of many connects in a
 * row, made as the daemons make them (mr_nats_connect), must authenticate. */
static void on_connected_noop(natsConnection *nc, void *closure) {}

START_TEST(every_nkey_connect_authenticates)
{
    char *json = mr_test_nats_json(&nats, "relay", "eu-west");
    json_error_t je;
    json_t *root = json_pack("{s:o}", "nats", json_loads(json, 0, &je));
    mr_cfg cfg = {0};
    mr_nats_conf conf;
    mr_nats_conf_init(&conf, NULL);
    mr_nats_conf_read(&conf, &cfg, root, "nats");
    char err[512];
    ck_assert_msg(mr_nats_conf_check(&conf, "nats", err, sizeof err) == 0, "%s", err);
    int failed = 0, n = 500; /* each fails with p = 1/256 before the fix: 86 % to see one */
    natsStatus first = NATS_OK;
    for (int i = 0; i < n; i++) {
        natsOptions *o = NULL;
        ck_assert_int_eq(natsOptions_Create(&o), NATS_OK);
        ck_assert_msg(mr_nats_conf_apply(&conf, o, err, sizeof err) == 0, "%s", err);
        /* As the relay and the health agent connect. */
        natsOptions_SetTimeout(o, 5000);
        natsOptions_SetMaxReconnect(o, -1);
        natsOptions_SetReconnectWait(o, 10);
        natsConnection *nc = NULL;
        natsStatus s = mr_nats_connect(&nc, o, on_connected_noop, NULL);
        int64_t deadline = mr_test_now_ms() + 5000;
        while (s == NATS_NOT_YET_CONNECTED && mr_test_now_ms() < deadline) {
            natsConnStatus st = natsConnection_Status(nc);
            if (st == NATS_CONN_STATUS_CONNECTED)
                s = NATS_OK;
            else if (st == NATS_CONN_STATUS_CLOSED)
                s = NATS_CONNECTION_CLOSED;
            else
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        if (s != NATS_OK && failed++ == 0)
            first = s;
        natsConnection_Destroy(nc);
        natsOptions_Destroy(o);
    }
    ck_assert_msg(failed == 0, "%d of %d connects with the relay's nkey failed (first: %s)", failed,
                  n, natsStatus_GetText(first));
    mr_nats_conf_free(&conf);
    json_decref(root);
    free(json);
}
END_TEST

START_TEST(locked_relays_carry_messages)
{
    mr_test_relay eu, us;
    char *j1 = mr_test_nats_json(&nats, "relay", "eu-west");
    char *j2 = mr_test_nats_json(&nats, "relay", "us-east");
    mr_test_relay_config(&eu, dir, "eu-west", "eu-west-1", j1, "", "");
    mr_test_relay_config(&us, dir, "us-east", "us-east-1", j2, "", "");
    /* Ready means connected with TLS and the nkey, and the region stream created. */
    mr_test_relay_start(&eu, relay_bin);
    mr_test_relay_start(&us, relay_bin);
    mr_ws alice, bob;
    mr_test_hello(&bob, &us, "bob", NULL);
    mr_test_join(&bob, "general");
    mr_test_hello(&alice, &eu, "alice", NULL);
    mr_test_join(&alice, "general");
    /* Interest crosses the server at once, but keep to deadlines rather than luck. */
    char *got = NULL;
    for (int i = 0; i < 50 && !got; i++) {
        char mid[16], data[64];
        snprintf(mid, sizeof mid, "m%d", i);
        snprintf(data, sizeof data, "{\"text\":\"hello %d\"}", i);
        mr_test_publish(&alice, "general", mid, data);
        mr_test_expect(&alice, "\"type\":\"ack\"");
        got = mr_test_next_message(&bob, 200);
    }
    ck_assert_msg(got != NULL, "bob in us-east never got alice's message");
    ck_assert_msg(strstr(got, "\"from\":\"alice\""), "%s", got);
    free(got);
    char *log = mr_test_read_file(eu.log);
    ck_assert_msg(!strstr(log, "Permissions Violation"), "a relay hit its own permissions:\n%s",
                  log);
    free(log);
    mr_ws_close(&alice);
    mr_ws_close(&bob);
    mr_test_relay_stop_clean(&eu);
    mr_test_relay_stop_clean(&us);
    free(j1);
    free(j2);
}
END_TEST

START_TEST(bad_credentials_reported)
{
    char path[700];
    stranger_seed(path, sizeof path);
    char *j = nats_value("relay", "eu-west", NULL, path);
    expect_refusal(j, "authorization violation", NULL);
    free(j);
}
END_TEST

START_TEST(password_never_logged)
{
    /* user + password_file against a server that has no such user. */
    char pw[700];
    snprintf(pw, sizeof pw, "%s/password", dir);
    ck_assert_int_eq(mr_test_write_file(pw, "hunter2-tries-again\n"), 0);
    char j[4096];
    snprintf(j, sizeof j,
             "{\"urls\":[\"%s\"],\"user\":\"meridian\",\"password_file\":\"%s\","
             "\"tls\":{\"ca\":\"%s\",\"cert\":\"%s\",\"key\":\"%s\"}}",
             nats.url, pw, nats.pki->ca, nats.pki->client_cert, nats.pki->client_key);
    mr_test_relay rp;
    relay_spawn(&rp, "eu-west-1", "eu-west", j);
    char *body;
    ck_assert_int_eq(wait_ready_body(&rp, "authorization violation", &body), 503);
    ck_assert_msg(!strstr(body, "hunter2"), "%s", body);
    free(body);
    char *log = wait_log(rp.log, "authorization violation", 10000);
    mr_test_relay_stop_clean(&rp);
    free(log);
    log = mr_test_read_file(rp.log);
    ck_assert_msg(!strstr(log, "hunter2"), "the password is in the log:\n%s", log);
    free(log);
}
END_TEST

/* A password inside a URL: refused at start, and not repeated in the message. */
START_TEST(password_in_url_refused)
{
    char url[256];
    snprintf(url, sizeof url, "[\"nats://meridian:hunter2@127.0.0.1:%d\"]", nats.port);
    mr_test_relay rp;
    mr_test_relay_config(&rp, dir, "eu-west", "eu-west-1", url, "", "");
    char *argv[] = {(char *)relay_bin, "--config", rp.cfg, NULL};
    rp.pid = mr_test_spawn(argv, rp.log);
    int st = mr_test_wait_exit(rp.pid, 10000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0,
                  "the relay ran with a password in its NATS URL (status %d)", st);
    char *log = mr_test_read_file(rp.log);
    ck_assert_msg(strstr(log, "credentials in a URL are not accepted"), "%s", log);
    ck_assert_msg(!strstr(log, "hunter2"), "the password is in the log:\n%s", log);
    free(log);
}
END_TEST

START_TEST(untrusted_ca_reported)
{
    char tls[2048];
    snprintf(tls, sizeof tls, "\"ca\":\"%s\",\"cert\":\"%s\",\"key\":\"%s\"", nats.pki->other_ca,
             nats.pki->client_cert, nats.pki->client_key);
    char *j = nats_value("relay", "eu-west", tls, NULL);
    expect_refusal(j, "TLS: ", "unable to get local issuer certificate");
    free(j);
}
END_TEST

START_TEST(client_certificate_required)
{
    char tls[2048];
    /* The server's CA, but no certificate of our own; then one from another CA. */
    snprintf(tls, sizeof tls, "\"ca\":\"%s\"", nats.pki->ca);
    char *j = nats_value("relay", "eu-west", tls, NULL);
    expect_refusal(j, "TLS: ", "client certificate");
    free(j);
    snprintf(tls, sizeof tls, "\"ca\":\"%s\",\"cert\":\"%s\",\"key\":\"%s\"", nats.pki->ca,
             nats.pki->other_cert, nats.pki->other_key);
    j = nats_value("relay", "eu-west", tls, NULL);
    expect_refusal(j, "TLS: ", "client certificate");
    free(j);
}
END_TEST

/*
 * A relay that claims eu-west with us-east's key: connected, but its region
 * stream is not its to create and its messages are not its to publish.
 */
START_TEST(wrong_region_key_cannot_publish)
{
    char *j = mr_test_nats_json(&nats, "relay", "us-east");
    mr_test_relay rp;
    relay_spawn(&rp, "eu-west-1", "eu-west", j);
    char *body;
    ck_assert_int_eq(wait_ready_body(&rp, "\"stream\":\"missing\"", &body), 503);
    ck_assert_msg(strstr(body, "\"nats\":\"connected\""), "%s", body);
    free(body);
    char *log = wait_log(rp.log,
                         "Permissions Violation for Publish to \"$JS.API.STREAM.INFO."
                         "MERIDIAN_EU_WEST\"",
                         10000);
    free(log);
    mr_test_relay_stop_clean(&rp);
    free(j);
}
END_TEST

/* The control plane with a key the server does not know says so, and does not start. */
START_TEST(control_bad_credentials_reported)
{
    char path[700], text[4096];
    stranger_seed(path, sizeof path);
    char *j = nats_value("control", "eu-west", NULL, path);
    char cfg[700], log[700];
    snprintf(cfg, sizeof cfg, "%s/control.json", dir);
    snprintf(log, sizeof log, "%s/control.log", dir);
    snprintf(text, sizeof text,
             "{\"region\":\"eu-west\",\"nats\":%s,\"postgres\":\"host=127.0.0.1 port=1\","
             "\"http_listen\":\"127.0.0.1:%d\",\"admin_listen\":\"127.0.0.1:%d\","
             "\"api_keys\":[\"0123456789abcdef0123\"]}",
             j, mr_test_free_port(), mr_test_free_port());
    ck_assert_int_eq(mr_test_write_file(cfg, text), 0);
    char *argv[] = {(char *)control_bin, "--config", cfg, NULL};
    pid_t pid = mr_test_spawn(argv, log);
    char *out = wait_log(log, "nats: cannot connect: authorization violation", 10000);
    /* Only NATS lines count: PostgreSQL (port 1) is rightly "not reachable". */
    for (char *line = strstr(out, "nats:"); line; line = strstr(line + 1, "nats:")) {
        size_t len = strcspn(line, "\n");
        ck_assert_msg(!memmem(line, len, "not reachable", 13), "%s", out);
    }
    free(out);
    ck_assert(mr_test_alive(pid));
    mr_test_stop(pid, SIGTERM, 5000);
    free(j);
}
END_TEST

int main(void)
{
    if (getenv("MERIDIAN_RELAY_BIN"))
        relay_bin = getenv("MERIDIAN_RELAY_BIN");
    if (getenv("MERIDIAN_CONTROL_BIN"))
        control_bin = getenv("MERIDIAN_CONTROL_BIN");
    Suite *s = suite_create("regions_auth");
    TCase *tc = mr_test_case(s, "locked", setup, teardown, 120);
    tcase_add_test(tc, every_nkey_connect_authenticates);
    tcase_add_test(tc, locked_relays_carry_messages);
    tcase_add_test(tc, bad_credentials_reported);
    tcase_add_test(tc, password_never_logged);
    tcase_add_test(tc, password_in_url_refused);
    tcase_add_test(tc, untrusted_ca_reported);
    tcase_add_test(tc, client_certificate_required);
    tcase_add_test(tc, wrong_region_key_cannot_publish);
    tcase_add_test(tc, control_bad_credentials_reported);
    return mr_test_run(s);
}
