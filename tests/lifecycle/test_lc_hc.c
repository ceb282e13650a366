/*
 * meridian-healthcheck's life cycle against a real nats-server (issue 15):
 * READY once its HTTP server is bound and NATS connected, WATCHDOG from its
 * libevent loop, a SIGHUP that reloads the log level and the API key and
 * refuses what needs a restart (a SIGHUP used to be ignored), a bad file
 * that changes nothing, STOPPING, and the exit codes.
 */
#include "lc_notify.h"
#include "mr_test.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY1   "agent-key-one-0123456789"
#define KEY2   "agent-key-two-0123456789"
#define SECRET "probe-secret-for-the-relays-0123456789"

static mr_test_nats nats;
static lc_notify nt;
static char *tmp;
static char cfg[700], log_path[700], regions[700];
static int port, relay_port;
static pid_t pid;

static void setup(void)
{
    tmp = mr_test_tmpdir("lchc");
    mr_test_nats_start(&nats, false);
    port = mr_test_free_port();
    relay_port = mr_test_free_port(); /* nothing listens there: every probe fails */
    int relay_admin_port = mr_test_free_port();
    snprintf(cfg, sizeof cfg, "%s/healthcheck.json", tmp);
    snprintf(log_path, sizeof log_path, "%s/healthcheck.log", tmp);
    snprintf(regions, sizeof regions, "%s/regions.json", tmp);
    char text[4096];
    snprintf(text, sizeof text,
             "{\"version\":1,\"dns\":{\"zone\":\"meridian.test.\",\"ws_name\":\"ws\","
             "\"api_name\":\"api\",\"region_name\":\"{region}.ws\",\"ttl\":5,"
             "\"default_region\":\"eu\",\"nameservers\":[{\"name\":\"ns1.meridian.test.\","
             "\"address\":\"127.0.0.1\",\"port\":53}]},\"regions\":[{\"name\":\"eu\","
             "\"geo\":{\"continents\":[\"EU\"],\"countries\":[],\"cidrs\":[]},\"failover\":[],"
             "\"relays\":[{\"id\":\"eu-1\",\"address\":\"127.0.0.1\",\"port\":%d,"
             "\"ws_url\":\"ws://127.0.0.1:%d/\",\"admin_url\":\"http://127.0.0.1:%d\"}],"
             "\"nats\":{\"servers\":[{\"name\":\"eu-nats\",\"host\":\"127.0.0.1\","
             "\"client_port\":4222,\"cluster_port\":6222,\"gateway_port\":7222}]}}]}",
             relay_port, relay_port, relay_admin_port);
    ck_assert_int_eq(mr_test_write_file(regions, text), 0);
    pid = 0;
}

static void teardown(void)
{
    if (pid > 0)
        mr_test_stop(pid, SIGKILL, 5000);
    mr_test_nats_stop(&nats);
    lc_notify_close(&nt);
}

static void write_config(int listen_port, const char *api_key, const char *level,
                         const char *secret, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"agent_id\":\"agent-eu\",\"region\":\"eu\",\"regions_file\":\"%s\","
             "\"listen\":\"127.0.0.1:%d\",\"nats\":[\"%s\"],\"api_key\":\"%s\","
             "\"probe\":{\"interval_ms\":100,\"timeout_ms\":200,\"secret\":\"%s\"},"
             "\"dns\":{\"type\":\"dry-run\"},\"verify\":{\"enabled\":false},"
             "\"state_dir\":\"%s\",\"log_level\":\"%s\"%s%s}",
             regions, listen_port, nats.url, api_key, secret, tmp, level, extra[0] ? "," : "",
             extra);
    ck_assert_int_eq(mr_test_write_file(cfg, text), 0);
}

static int drain_status(const char *key, const char *action)
{
    char headers[200], path[100], *body = NULL;
    snprintf(headers, sizeof headers, "X-API-Key: %s\r\n", key);
    snprintf(path, sizeof path, "/v1/regions/eu/%s", action);
    int st = mr_test_http("127.0.0.1", port, "POST", path, headers, "", &body);
    free(body);
    return st;
}

static void reload_and_wait(const char *outcome, int nth)
{
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    int64_t deadline = mr_test_now_ms() + 10000;
    while (lc_log_count(log_path, outcome) < nth) {
        ck_assert_msg(mr_test_alive(pid), "the agent died on SIGHUP; see %s", log_path);
        ck_assert_msg(mr_test_now_ms() < deadline, "no \"%s\" #%d in %s", outcome, nth, log_path);
        usleep(20 * 1000); /* between polls of the log */
    }
}

START_TEST(agent_notifies_and_reloads_log_level_and_key)
{
    write_config(port, KEY1, "info", SECRET, "");
    lc_notify_open(&nt, tmp, true, 400000);
    char *argv[] = {MERIDIAN_HC_BIN, "--config", cfg, NULL};
    pid = mr_test_spawn(argv, log_path);
    ck_assert_msg(lc_notify_expect(&nt, "READY=1", 15000), "no READY=1 (got %s); see %s", nt.seen,
                  log_path);
    /* READY after the HTTP server is bound and NATS connected. */
    char *body;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", port, "/healthz", &body), 200);
    free(body);
    ck_assert_int_ge(lc_notify_count(&nt, "WATCHDOG=1", 1000), 3);
    ck_assert_int_eq(drain_status(KEY1, "drain"), 200);
    ck_assert_int_eq(drain_status(KEY2, "drain"), 401);
    /* Probes fail every 100 ms, but at info nothing says so. */
    ck_assert_int_eq(lc_log_count(log_path, "probe eu-1"), 0);

    /* Debug level, a new key; listen cannot move. */
    int moved = mr_test_free_port();
    write_config(moved, KEY2, "debug", SECRET, "");
    lc_notify_drain(&nt);
    reload_and_wait("reload: applied", 1);
    ck_assert_msg(lc_notify_expect(&nt, "RELOADING=1", 2000), "no RELOADING=1: %s", nt.seen);
    ck_assert_msg(lc_notify_expect(&nt, "READY=1", 2000), "no READY=1 after reload: %s", nt.seen);
    ck_assert_msg(lc_log_wait(log_path, "probe eu-1", 5000),
                  "no debug lines after the reload; see %s", log_path);
    ck_assert_int_eq(drain_status(KEY2, "undrain"), 200);
    ck_assert_int_eq(drain_status(KEY1, "undrain"), 401);
    ck_assert_msg(lc_log_count(log_path, "reload: listen") == 1, "no refusal naming listen; see %s",
                  log_path);
    ck_assert_int_ne(mr_test_wait_port("127.0.0.1", moved, 300), 0);

    /* A bad file changes nothing: not JSON, then a bad log level next to a new key. */
    ck_assert_int_eq(mr_test_write_file(cfg, "{\"agent_id\":"), 0);
    reload_and_wait("reload: refused", 1);
    write_config(port, KEY1, "chatty", SECRET, "");
    reload_and_wait("reload: refused", 2);
    ck_assert_int_eq(drain_status(KEY2, "drain"), 200);
    ck_assert_int_eq(drain_status(KEY1, "drain"), 401);

    /* A unix datagram socket queues about ten messages: read what waits, as systemd does. */
    lc_notify_drain(&nt);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_msg(lc_notify_expect(&nt, "STOPPING=1", 5000), "no STOPPING=1: %s", nt.seen);
    ck_assert_int_eq(lc_exit_status(pid, 20000), 0);
    pid = 0;
}
END_TEST

static int run_agent(bool check)
{
    char out[700];
    snprintf(out, sizeof out, "%s/run.log", tmp);
    char *argv[] = {MERIDIAN_HC_BIN, "--config", cfg, check ? "--check" : NULL, NULL};
    return lc_run(argv, out);
}

static bool run_log_has(const char *needle)
{
    char out[700];
    snprintf(out, sizeof out, "%s/run.log", tmp);
    return lc_log_count(out, needle) > 0;
}

START_TEST(agent_exit_codes_and_check)
{
    write_config(port, KEY1, "info", SECRET, "\"no_such_key\":1");
    ck_assert_int_eq(run_agent(true), 2);
    ck_assert_int_eq(run_agent(false), 2);
    ck_assert(run_log_has("no_such_key"));
    /* --check: a probe secret too short for HS256; an address this host does not have. */
    write_config(port, KEY1, "info", "short", "");
    ck_assert_int_eq(run_agent(true), 2);
    ck_assert(run_log_has("probe.secret"));
    char text[4096];
    write_config(port, KEY1, "info", SECRET, "");
    char *good = mr_test_read_file(cfg);
    snprintf(text, sizeof text, "%s", good);
    free(good);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    char *at = strstr(text, listen);
    ck_assert_ptr_nonnull(at);
    char fixed[4096];
    snprintf(fixed, sizeof fixed, "%.*s192.0.2.1:9%s", (int)(at - text), text, at + strlen(listen));
    ck_assert_int_eq(mr_test_write_file(cfg, fixed), 0);
    ck_assert_int_eq(run_agent(true), 2);
    ck_assert(run_log_has("listen"));
    /* Its port taken: a start failure, 1; --check notes it only. */
    write_config(port, KEY1, "info", SECRET, "");
    int fd = lc_listen_on(port);
    ck_assert_int_eq(run_agent(false), 1);
    ck_assert_int_eq(run_agent(true), 0);
    ck_assert(run_log_has("in use"));
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lifecycle_healthcheck");
    TCase *tc = mr_test_case(s, "agent", setup, teardown, 90);
    tcase_add_test(tc, agent_notifies_and_reloads_log_level_and_key);
    tcase_add_test(tc, agent_exit_codes_and_check);
    return mr_test_run(s);
}
