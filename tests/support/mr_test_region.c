/* A three-region deployment for integration suites (see mr_test_region.h). */
#include "mr_test_region.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A copy of regions/local.json whose NATS ports are free ones. */
static void write_regions(mr_test_deploy *d, const char *source_dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/regions/local.json", source_dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    ck_assert_msg(root != NULL, "%s: %s", path, je.text);
    json_t *regs = json_object_get(root, "regions");
    ck_assert_int_eq(json_array_size(regs), MR_TEST_NREGIONS);
    for (size_t i = 0; i < MR_TEST_NREGIONS; i++) {
        mr_test_region *r = &d->r[i];
        json_t *g = json_array_get(regs, i);
        json_t *srv = json_array_get(json_object_get(json_object_get(g, "nats"), "servers"), 0);
        snprintf(r->name, sizeof r->name, "%s", json_string_value(json_object_get(g, "name")));
        snprintf(r->host, sizeof r->host, "%s", json_string_value(json_object_get(srv, "host")));
        r->client_port = mr_test_free_port();
        r->monitor_port = mr_test_free_port();
        char url[sizeof r->nats_url];
        snprintf(url, sizeof url, "nats://%s:%d", r->host, r->client_port);
        memcpy(r->nats_url, url, sizeof url);
        json_object_set_new(srv, "client_port", json_integer(r->client_port));
        json_object_set_new(srv, "cluster_port", json_integer(mr_test_free_port()));
        json_object_set_new(srv, "gateway_port", json_integer(mr_test_free_port()));
        json_object_set_new(srv, "monitor_port", json_integer(r->monitor_port));
    }
    snprintf(d->regions_file, sizeof d->regions_file, "%s/regions.json", d->dir);
    ck_assert(json_dump_file(root, d->regions_file, JSON_INDENT(2)) == 0);
    json_decref(root);
}

static void render(mr_test_deploy *d, int i, const char *regions_bin)
{
    mr_test_region *r = &d->r[i];
    /* Local copies: GCC cannot tell that d->dir does not point into *d. */
    char store[700], log[700], conf[sizeof r->conf], nlog[sizeof r->log], name[sizeof r->name];
    memcpy(name, r->name, sizeof name);
    snprintf(store, sizeof store, "%s/js-%s", d->dir, name);
    snprintf(conf, sizeof conf, "%s/nats-%s.conf", d->dir, name);
    snprintf(nlog, sizeof nlog, "%s/nats-%s.log", d->dir, name);
    memcpy(r->conf, conf, sizeof conf);
    memcpy(r->log, nlog, sizeof nlog);
    snprintf(log, sizeof log, "%s/render.log", d->dir);
    char *argv[32] = {(char *)regions_bin, "nats-conf", d->regions_file, "--region", r->name,
                      "--store-dir",       store,       "--out",         r->conf,    NULL};
    int n = 9;
    if (d->locked) {
        char *more[] = {
            "--tls-cert", d->pki.cert,        "--tls-key",       d->pki.key,          "--tls-ca",
            d->pki.ca,    "--client-tls",     "--client-verify", "--nkeys-dir",       d->keys,
            "--user",     "meridian-cluster", "--password-file", d->cluster_password, NULL};
        for (int k = 0; more[k]; k++)
            argv[n++] = more[k];
        argv[n] = NULL;
    }
    pid_t pid = mr_test_spawn(argv, log);
    int st = mr_test_wait_exit(pid, 30000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "meridian-regions nats-conf failed (%d); see %s", st, log);
}

static void nats_spawn(mr_test_region *r)
{
    char *argv[] = {"nats-server", "-c", r->conf, NULL};
    r->nats_pid = mr_test_spawn(argv, r->log);
    ck_assert_msg(mr_test_wait_port(r->host, r->client_port, 15000) == 0,
                  "nats-server %s did not listen; see %s", r->name, r->log);
}

static bool gateways_up(mr_test_region *r)
{
    char *body = NULL;
    int st = mr_test_http_get(r->host, r->monitor_port, "/gatewayz", &body);
    bool ok = false;
    if (st == 200) {
        json_t *j = json_loads(body, 0, NULL);
        ok = json_object_size(json_object_get(j, "outbound_gateways")) == MR_TEST_NREGIONS - 1 &&
             json_object_size(json_object_get(j, "inbound_gateways")) == MR_TEST_NREGIONS - 1;
        json_decref(j);
    }
    free(body);
    return ok;
}

/* JetStream is usable once the meta group has a leader the server knows of. */
static bool jetstream_up(mr_test_region *r)
{
    char *body = NULL;
    int st = mr_test_http_get(r->host, r->monitor_port, "/jsz", &body);
    bool ok = st == 200 && body && strstr(body, "\"meta_cluster\"") && strstr(body, "\"leader\"");
    free(body);
    return ok;
}

void mr_test_deploy_wait_gateways(mr_test_deploy *d, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (int i = 0; i < MR_TEST_NREGIONS; i++) {
        mr_test_region *r = &d->r[i];
        if (r->nats_pid <= 0)
            continue;
        while (!(gateways_up(r) && jetstream_up(r))) {
            ck_assert_msg(mr_test_now_ms() < deadline,
                          "gateways/JetStream of %s not up in %d ms; see %s", r->name, timeout_ms,
                          r->log);
            ck_assert_msg(mr_test_alive(r->nats_pid), "nats-server %s exited; see %s", r->name,
                          r->log);
            nap_ms(50);
        }
    }
}

static void deploy_nats(mr_test_deploy *d, const char *source_dir, const char *regions_bin,
                        bool locked)
{
    memset(d, 0, sizeof *d);
    d->dir = mr_test_tmpdir("multiregion");
    write_regions(d, source_dir);
    if (locked) {
        d->locked = true;
        const char *hosts[MR_TEST_NREGIONS];
        for (int i = 0; i < MR_TEST_NREGIONS; i++)
            hosts[i] = d->r[i].host;
        mr_test_pki_make(&d->pki, d->dir, hosts, MR_TEST_NREGIONS);
        snprintf(d->cluster_password, sizeof d->cluster_password, "%s/cluster.password", d->dir);
        ck_assert_int_eq(mr_test_write_file(d->cluster_password, "cluster-secret-4f1c9e\n"), 0);
        snprintf(d->keys, sizeof d->keys, "%s/nkeys", d->dir);
        char log[700];
        snprintf(log, sizeof log, "%s/nkeys.log", d->dir);
        char *argv[] = {(char *)regions_bin, "nkeys", d->regions_file, "--dir", d->keys, NULL};
        pid_t pid = mr_test_spawn(argv, log);
        int st = mr_test_wait_exit(pid, 30000);
        ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "meridian-regions nkeys failed (%d); see %s", st, log);
    }
    for (int i = 0; i < MR_TEST_NREGIONS; i++)
        render(d, i, regions_bin);
    for (int i = 0; i < MR_TEST_NREGIONS; i++)
        nats_spawn(&d->r[i]);
    mr_test_deploy_wait_gateways(d, 30000);
}

void mr_test_deploy_nats(mr_test_deploy *d, const char *source_dir, const char *regions_bin)
{
    deploy_nats(d, source_dir, regions_bin, false);
}

void mr_test_deploy_nats_locked(mr_test_deploy *d, const char *source_dir, const char *regions_bin)
{
    deploy_nats(d, source_dir, regions_bin, true);
}

char *mr_test_deploy_nats_json(const mr_test_deploy *d, const char *role, int i)
{
    const mr_test_region *r = &d->r[i];
    if (!d->locked) {
        char *out = malloc(256);
        snprintf(out, 256, "[\"%s\"]", r->nats_url);
        return out;
    }
    int k = mr_nats_role_find(role);
    ck_assert_msg(k >= 0, "no NATS role %s", role);
    return mr_test_nats_json_locked(r->nats_url, &d->pki, d->keys, (mr_nats_role)k, r->name);
}

void mr_test_deploy_nats_restart(mr_test_deploy *d, int i)
{
    nats_spawn(&d->r[i]);
    mr_test_deploy_wait_gateways(d, 30000);
}

void mr_test_deploy_relays(mr_test_deploy *d, const char *relay_bin, const char *extra)
{
    d->relay_bin = relay_bin;
    const char *limits = "\"publish_rate\":100000,\"publish_burst\":100000";
    for (int i = 0; i < MR_TEST_NREGIONS; i++) {
        mr_test_region *r = &d->r[i];
        for (int k = 0; k < MR_TEST_RELAYS_PER_REGION; k++) {
            char node[64], top[1024];
            snprintf(node, sizeof node, "%s-%d", r->name, k + 1);
            snprintf(top, sizeof top,
                     "\"stream\":{\"placement\":\"%s\"},"
                     "\"presence\":{\"heartbeat_ms\":%d,\"expire_heartbeats\":%d}%s%s",
                     r->name, MR_TEST_PRESENCE_HEARTBEAT_MS, MR_TEST_PRESENCE_EXPIRE,
                     extra[0] ? "," : "", extra);
            char *nats = mr_test_deploy_nats_json(d, "relay", i);
            mr_test_relay_config(&r->relays[k], d->dir, r->name, node, nats, limits, top);
            free(nats);
        }
    }
    /* One at a time: the first relay of a region creates its stream there. */
    for (int i = 0; i < MR_TEST_NREGIONS; i++)
        for (int k = 0; k < MR_TEST_RELAYS_PER_REGION; k++)
            mr_test_relay_start(&d->r[i].relays[k], relay_bin);
}

void mr_test_deploy_relay_restart(mr_test_deploy *d, int i, int k)
{
    mr_test_relay_start(&d->r[i].relays[k], d->relay_bin);
}

void mr_test_deploy_kill_region(mr_test_deploy *d, int i)
{
    mr_test_region *r = &d->r[i];
    /* Signal everything first, reap afterwards: the outage is one moment. */
    kill(r->nats_pid, SIGKILL);
    for (int k = 0; k < MR_TEST_RELAYS_PER_REGION; k++)
        if (r->relays[k].pid > 0)
            kill(r->relays[k].pid, SIGKILL);
    mr_test_stop(r->nats_pid, SIGKILL, 5000);
    r->nats_pid = 0;
    for (int k = 0; k < MR_TEST_RELAYS_PER_REGION; k++) {
        if (r->relays[k].pid > 0)
            mr_test_stop(r->relays[k].pid, SIGKILL, 5000);
        r->relays[k].pid = 0;
    }
}

void mr_test_deploy_stop(mr_test_deploy *d)
{
    for (int i = 0; i < MR_TEST_NREGIONS; i++)
        for (int k = 0; k < MR_TEST_RELAYS_PER_REGION; k++)
            if (d->r[i].relays[k].pid > 0)
                mr_test_relay_stop_clean(&d->r[i].relays[k]);
    for (int i = 0; i < MR_TEST_NREGIONS; i++) {
        if (d->r[i].nats_pid > 0)
            mr_test_stop(d->r[i].nats_pid, SIGTERM, 10000);
        d->r[i].nats_pid = 0;
    }
}
