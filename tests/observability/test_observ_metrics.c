/*
 * The observability pack against the real daemons: a relay, a control
 * plane and a health agent run against a real nats-server (JetStream) and
 * PostgreSQL, all with `log_format: json`; after a publish and a probe
 * round their /metrics texts are saved and checked:
 *   - every one passes `promtool check metrics` (names, units, types);
 *   - every one exports meridian_build_info and the process_* metrics;
 *   - every metric a dashboard panel or an alert rule names is declared
 *     by one of them (check_queries.py), and the lint does fail on a
 *     dashboard that names a metric nobody exports;
 *   - every line the three daemons logged is one JSON object.
 */
#include "ctl_test_util.h"
#include "mr_test.h"
#include "mr_test_pg.h"
#include "mr_test_relay.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static char *tmp;
static mr_test_nats nats;
static mr_test_pg pg;
static mr_test_relay relay;
static ctl_proc ctl;
static pid_t agent_pid;
static int agent_port;
static char agent_log[600];

static void setup(void)
{
    tmp = mr_test_tmpdir("observ");
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
}

static void teardown(void)
{
    if (agent_pid > 0)
        mr_test_stop(agent_pid, SIGTERM, 10000);
    if (relay.pid > 0)
        mr_test_stop(relay.pid, SIGTERM, 10000);
    if (ctl.pid > 0)
        ctl_proc_stop(&ctl);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Run a command line through the shell; returns its exit status and its output (malloc'd). */
static int run(const char *cmd, char **out)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    ck_assert_msg(p != NULL, "popen %s", cmd);
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* GET /metrics from `port` into `dir`/`name`.prom; returns the text. */
static char *scrape(int port, const char *name, char *path, size_t pathlen)
{
    char *body = NULL;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", port, "/metrics", &body), 200);
    snprintf(path, pathlen, "%s/%s.prom", tmp, name);
    ck_assert_int_eq(mr_test_write_file(path, body), 0);
    return body;
}

static void start_agent(void)
{
    char regions[600], cfg[600];
    snprintf(regions, sizeof regions, "%s/regions.json", tmp);
    char text[4096];
    snprintf(text, sizeof text,
             "{\"version\":1,\"dns\":{\"zone\":\"meridian.invalid.\",\"ws_name\":\"ws\","
             "\"api_name\":\"api\",\"region_name\":\"{region}.ws\",\"ttl\":30,"
             "\"default_region\":\"local\",\"nameservers\":[{\"name\":\"ns1.meridian.invalid.\","
             "\"address\":\"127.0.0.1\",\"port\":53}]},"
             "\"regions\":[{\"name\":\"local\",\"geo\":{\"continents\":[\"EU\"]},\"failover\":[],"
             "\"relays\":[{\"id\":\"local-1\",\"address\":\"127.0.0.1\",\"port\":%d,"
             "\"ws_url\":\"ws://127.0.0.1:%d/\",\"admin_url\":\"http://127.0.0.1:%d\"}],"
             "\"nats\":{\"servers\":[{\"name\":\"local-nats-1\",\"host\":\"127.0.0.1\","
             "\"client_port\":%d,\"cluster_port\":6222,\"gateway_port\":7222}]}}]}\n",
             relay.port, relay.port, relay.admin_port, nats.port);
    ck_assert_int_eq(mr_test_write_file(regions, text), 0);
    agent_port = mr_test_free_port();
    snprintf(cfg, sizeof cfg, "%s/agent.json", tmp);
    snprintf(agent_log, sizeof agent_log, "%s/agent.log", tmp);
    snprintf(text, sizeof text,
             "{\"region\":\"local\",\"regions_file\":\"%s\",\"listen\":\"127.0.0.1:%d\","
             "\"nats\":[\"%s\"],\"probe\":{\"interval_ms\":200,\"secret\":\"%s\"},"
             "\"lease\":{\"ttl_ms\":1000,\"renew_ms\":300},\"state_dir\":\"%s\","
             "\"dns\":{\"type\":\"dry-run\"},\"log_level\":\"debug\",\"log_format\":\"json\"}\n",
             regions, agent_port, nats.url, MR_TEST_SECRET, tmp);
    ck_assert_int_eq(mr_test_write_file(cfg, text), 0);
    char *argv[] = {MERIDIAN_HC_BIN, "--config", cfg, NULL};
    agent_pid = mr_test_spawn(argv, agent_log);
    ck_assert_msg(mr_test_wait_port("127.0.0.1", agent_port, 10000) == 0, "agent: see %s",
                  agent_log);
}

/* Every line of `path` is one JSON object with ts, level, component and msg. */
static void assert_json_log(const char *path)
{
    char *text = mr_test_read_file(path);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        ck_assert_msg(o && json_is_object(o), "%s: not a JSON object: %s", path, line);
        ck_assert_msg(json_is_string(json_object_get(o, "msg")) &&
                          json_is_string(json_object_get(o, "level")) &&
                          json_is_string(json_object_get(o, "ts")) &&
                          json_is_string(json_object_get(o, "component")),
                      "%s: %s", path, line);
        json_decref(o);
        lines++;
    }
    ck_assert_msg(lines >= 3, "%s: only %d lines", path, lines);
    free(text);
}

START_TEST(test_metrics_and_pack)
{
    /* The relay first: it creates the region stream that control checks. */
    mr_test_relay_config(&relay, tmp, "local", "local-1", nats.url, "", "\"log_format\":\"json\"");
    mr_test_relay_start(&relay, MERIDIAN_RELAY_BIN);
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "local", "[\"local\"]", "\"log_format\":\"json\"");
    ctl_proc_start(&ctl, NULL);
    start_agent();

    /* Some traffic: a member, a publish, its ack and its commit. */
    mr_ws ws;
    mr_test_hello(&ws, &relay, "alice", NULL);
    mr_test_join(&ws, "lobby");
    mr_test_publish(&ws, "lobby", "m1", "{\"text\":\"hi\"}");
    mr_test_expect(&ws, "\"type\":\"ack\"");
    mr_test_expect(&ws, "\"seq\":1");

    /* Wait for what the pack reads: a probe latency, and the consumer lag read once. */
    char path_relay[700], path_ctl[700], path_agent[700];
    int64_t deadline = mr_test_now_ms() + 20000;
    char *agent_text, *ctl_text;
    for (;;) {
        agent_text = scrape(agent_port, "agent", path_agent, sizeof path_agent);
        ctl_text = scrape(ctl.admin_port, "control", path_ctl, sizeof path_ctl);
        if (strstr(agent_text, "meridian_hc_probe_latency_seconds{region=\"local\"") &&
            strstr(ctl_text, "meridian_control_stream_messages{region=\"local\"} 1\n"))
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "metrics incomplete:\n%s\n%s", agent_text,
                      ctl_text);
        free(agent_text);
        free(ctl_text);
        sleep_ms(200);
    }
    char *relay_text = scrape(relay.admin_port, "relay", path_relay, sizeof path_relay);
    ck_assert_msg(strstr(relay_text, "\nmeridian_relay_joins_total 1\n") &&
                      strstr(relay_text, "\nmeridian_relay_members 1\n"),
                  "%s", relay_text);
    ck_assert_ptr_nonnull(strstr(ctl_text, "\nmeridian_control_postgres_connected 1\n"));
    ck_assert_ptr_nonnull(
        strstr(ctl_text, "meridian_control_consumer_pending_messages{region=\"local\"} 0\n"));

    const char *paths[] = {path_relay, path_ctl, path_agent};
    const char *texts[] = {relay_text, ctl_text, agent_text};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(
            strstr(texts[i], "\nmeridian_build_info{version=\"" MERIDIAN_VERSION "\",commit=\""),
            "%s: no build info", paths[i]);
        static const char *const process[] = {"process_cpu_seconds_total",
                                              "process_resident_memory_bytes",
                                              "process_virtual_memory_bytes",
                                              "process_open_fds",
                                              "process_max_fds",
                                              "process_start_time_seconds"};
        for (size_t k = 0; k < sizeof process / sizeof process[0]; k++) {
            char needle[80];
            snprintf(needle, sizeof needle, "\n%s ", process[k]);
            ck_assert_msg(strstr(texts[i], needle), "%s: no %s", paths[i], process[k]);
        }
        char cmd[1024], *out;
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s", paths[i]);
        int st = run(cmd, &out);
        ck_assert_msg(st == 0 && out[0] == '\0', "promtool check metrics %s: exit %d:\n%s",
                      paths[i], st, out);
        free(out);
    }

    /* The dashboard and the rules name only metrics these daemons export. */
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "python3 %s/tests/observability/check_queries.py --metrics %s %s %s "
             "--dashboard %s/deploy/observability/grafana/meridian-overview.json "
             "--rules %s/deploy/observability/prometheus/meridian-alerts.yml "
             "--rules-test %s/deploy/observability/prometheus/meridian-alerts.test.yml "
             "--promtool promtool",
             MERIDIAN_SOURCE_DIR, path_relay, path_ctl, path_agent, MERIDIAN_SOURCE_DIR,
             MERIDIAN_SOURCE_DIR, MERIDIAN_SOURCE_DIR);
    int st = run(cmd, &out);
    ck_assert_msg(st == 0, "check_queries failed:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "0 problems"));
    free(out);

    /* ... and the lint would notice one that does not. */
    snprintf(cmd, sizeof cmd,
             "sed 's/meridian_relay_joins_total/meridian_relay_joinz_total/' "
             "%s/deploy/observability/grafana/meridian-overview.json > %s/bad.json && "
             "python3 %s/tests/observability/check_queries.py --metrics %s %s %s "
             "--dashboard %s/bad.json "
             "--rules %s/deploy/observability/prometheus/meridian-alerts.yml",
             MERIDIAN_SOURCE_DIR, tmp, MERIDIAN_SOURCE_DIR, path_relay, path_ctl, path_agent, tmp,
             MERIDIAN_SOURCE_DIR);
    st = run(cmd, &out);
    ck_assert_msg(st == 1 && strstr(out, "meridian_relay_joinz_total is not exported"),
                  "the lint accepted an unknown metric: exit %d\n%s", st, out);
    free(out);

    mr_ws_close(&ws);
    free(relay_text);
    free(ctl_text);
    free(agent_text);
    /* Stop cleanly (their shutdown lines are logged too), then read every log line. */
    mr_test_stop(agent_pid, SIGTERM, 10000);
    agent_pid = 0;
    mr_test_stop(relay.pid, SIGTERM, 20000);
    relay.pid = 0;
    ctl_proc_stop(&ctl);
    assert_json_log(relay.log);
    assert_json_log(ctl.log);
    assert_json_log(agent_log);
    ctl_proc_free(&ctl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("observability");
    TCase *tc = mr_test_case(s, "metrics", setup, teardown, 120);
    tcase_add_test(tc, test_metrics_and_pack);
    return mr_test_run(s);
}
