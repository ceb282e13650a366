/*
 * Tests of the meridian-regions program itself: exit codes, messages, and
 * what each subcommand prints, run as a child process on regions/local.json
 * and on broken copies of it.
 *
 * Usage: test_regions_cli PATH-TO-meridian-regions
 */
#include "mr_test.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MERIDIAN_SOURCE_DIR
#error "MERIDIAN_SOURCE_DIR must be defined by the build"
#endif
/* A variable, not a macro of two pasted literals: in the argument lists
 * below bugprone-suspicious-missing-comma would take those for a missing comma. */
static const char local_json[] = MERIDIAN_SOURCE_DIR "/regions/local.json";

static const char *regions_bin;
static char *dir;

/* Spawn `argv` with its output in `dir`/`logname`; returns its exit code, that output in *out. */
static int run_argv(char **out, char *const argv[], const char *logname)
{
    char log[600];
    snprintf(log, sizeof log, "%s/%s", dir, logname);
    unlink(log);
    pid_t pid = mr_test_spawn((char **)argv, log);
    int st = mr_test_wait_exit(pid, 20000);
    if (st == -1) {
        mr_test_stop(pid, SIGKILL, 1000);
        ck_abort_msg("meridian-regions did not exit within 20 s");
    }
    ck_assert_msg(WIFEXITED(st), "meridian-regions died (status %d)", st);
    *out = mr_test_read_file(log);
    return WEXITSTATUS(st);
}

/* Run meridian-regions with `args` (NULL-terminated); returns its exit code, output in *out. */
static int run(char **out, const char *const *args)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)regions_bin;
    for (; *args && n < 31; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    return run_argv(out, argv, "out.log");
}

/* Run meridian-regions with its stdout on /dev/full; returns its exit code, stderr in *out. */
static int run_to_full(char **out, const char *const *args)
{
    char *argv[40];
    int n = 0;
    argv[n++] = "sh";
    argv[n++] = "-c";
    argv[n++] = "exec \"$@\" >/dev/full";
    argv[n++] = "sh";
    argv[n++] = (char *)regions_bin;
    for (; *args && n < 39; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    return run_argv(out, argv, "err.log");
}

static void setup(void)
{
    dir = mr_test_tmpdir("regions-cli");
}

static void teardown(void)
{
    char *argv[] = {"rm", "-rf", dir, NULL};
    pid_t pid = mr_test_spawn(argv, NULL);
    mr_test_wait_exit(pid, 20000);
    free(dir);
}

START_TEST(test_check)
{
    char *out;
    ck_assert_int_eq(run(&out, (const char *[]){"check", local_json, NULL}), 0);
    ck_assert_msg(strstr(out, "ok: 3 regions, 6 relays, 3 NATS servers, zone meridian.test."), "%s",
                  out);
    free(out);

    /* A broken copy: the message names the file, the field and the problem. */
    json_t *root = json_load_file(local_json, 0, NULL);
    ck_assert_ptr_nonnull(root);
    json_t *r0 = json_array_get(json_object_get(root, "regions"), 0);
    json_object_set_new(r0, "failover", json_pack("[s]", "us-wst"));
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    ck_assert(json_dump_file(root, bad, 0) == 0);
    json_decref(root);
    ck_assert_int_eq(run(&out, (const char *[]){"check", bad, NULL}), 1);
    char want[700];
    snprintf(want, sizeof want, "%s: regions[0].failover[0]: unknown region \"us-wst\"", bad);
    ck_assert_msg(strstr(out, want), "%s", out);
    free(out);

    ck_assert_int_eq(run(&out, (const char *[]){"frob", local_json, NULL}), 2);
    ck_assert_msg(strstr(out, "unknown command"), "%s", out);
    free(out);
}
END_TEST

START_TEST(test_nats_conf)
{
    char conf[600], pw[600], store[600];
    snprintf(conf, sizeof conf, "%s/eu.conf", dir);
    snprintf(pw, sizeof pw, "%s/pw", dir);
    snprintf(store, sizeof store, "%s/js", dir);
    ck_assert(mr_test_write_file(pw, "p@ss\n") == 0);
    char *out;
    ck_assert_int_eq(run(&out, (const char *[]){"nats-conf", local_json, "--region", "eu-west",
                                                "--store-dir", store, "--user", "u",
                                                "--password-file", pw, "--out", conf, NULL}),
                     0);
    free(out);
    struct stat sb;
    ck_assert_int_eq(stat(conf, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600); /* it holds credentials */
    char *c = mr_test_read_file(conf);
    static const char *const want[] = {
        "server_name: \"eu-west-nats-1\"",
        "host: \"127.1.0.10\"\nport: 17200\n",
        "http_port: 17203",
        "cluster {\n  name: \"eu-west\"\n  host: \"127.1.0.10\"\n  port: 17201\n",
        "\"nats-route://u:p%40ss@127.1.0.10:17201\"",
        "gateway {\n  name: \"eu-west\"\n  host: \"127.1.0.10\"\n  port: 17202\n",
        "{name: \"us-east\", urls: [\"nats://u:p%40ss@127.2.0.10:17202\"]}",
        "{name: \"ap-south\", urls: [\"nats://u:p%40ss@127.3.0.10:17202\"]}",
        "password: \"p@ss\"",
        "jetstream {\n  store_dir: ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(c, want[i]), "config lacks %s:\n%s", want[i], c);
    ck_assert_msg(!strstr(c, "tls {"), "no TLS was asked for:\n%s", c);
    free(c);

    /* --listen binds elsewhere and advertises the file's addresses. */
    ck_assert_int_eq(
        run(&out, (const char *[]){"nats-conf", local_json, "--region", "us-east", "--store-dir",
                                   store, "--listen", "0.0.0.0", "--out", conf, NULL}),
        0);
    free(out);
    c = mr_test_read_file(conf);
    static const char *const want_listen[] = {
        "host: \"0.0.0.0\"\nport: 17200\nclient_advertise: \"127.2.0.10:17200\"\n",
        "  host: \"0.0.0.0\"\n  port: 17201\n  advertise: \"127.2.0.10:17201\"\n",
        "  host: \"0.0.0.0\"\n  port: 17202\n  advertise: \"127.2.0.10:17202\"\n",
        "\"nats-route://127.2.0.10:17201\"",
    };
    for (size_t i = 0; i < sizeof want_listen / sizeof want_listen[0]; i++)
        ck_assert_msg(strstr(c, want_listen[i]), "config lacks %s:\n%s", want_listen[i], c);
    ck_assert_msg(!strstr(c, "authorization"), "no credentials were asked for:\n%s", c);
    free(c);

    /* Inconsistent options are refused with a reason. */
    static const struct {
        const char *args[16];
        const char *msg;
    } bad[] = {
        {{"nats-conf", local_json, "--region", "eu-west", NULL}, "--store-dir is required"},
        {{"nats-conf", local_json, "--store-dir", "x", NULL}, "needs --region"},
        {{"nats-conf", local_json, "--region", "mars", "--store-dir", "x", NULL},
         "no region named \"mars\""},
        {{"nats-conf", local_json, "--region", "eu-west", "--store-dir", "x", "--tls-cert", "c",
          NULL},
         "go together"},
        {{"nats-conf", local_json, "--region", "eu-west", "--store-dir", "x", "--user", "u", NULL},
         "--user and --password go together"},
        {{"nats-conf", local_json, "--region", "eu-west", "--store-dir", "x", "--token", "t",
          "--user", "u", "--password", "p", NULL},
         "not both"},
        {{"nats-conf", local_json, "--region", "eu-west", "--store-dir", "x", "--client-tls", NULL},
         "--client-tls needs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(run(&out, bad[i].args), 1);
        ck_assert_msg(strstr(out, bad[i].msg), "case %zu: %s", i, out);
        free(out);
    }
}
END_TEST

/* Keys per role and region, the locked config they go into, and the permission table. */
START_TEST(test_nkeys_and_locked_conf)
{
    char keys[600], conf[600], store[600], path[700];
    snprintf(keys, sizeof keys, "%s/nkeys", dir);
    snprintf(conf, sizeof conf, "%s/locked.conf", dir);
    snprintf(store, sizeof store, "%s/js", dir);
    char *out, *again;
    ck_assert_int_eq(run(&out, (const char *[]){"nkeys", local_json, "--dir", keys, NULL}), 0);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 9); /* three roles in three regions */
    ck_assert_msg(strstr(out, "relay\teu-west\tU") && strstr(out, "healthcheck\tap-south\tU"), "%s",
                  out);
    struct stat sb;
    snprintf(path, sizeof path, "%s/control-us-east.nk", keys);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600); /* a seed is a secret */
    char *seed = mr_test_read_file(path);
    ck_assert_msg(strncmp(seed, "SU", 2) == 0, "%s", seed);
    seed[strcspn(seed, "\n")] = '\0';
    /* Kept across runs; a lost .pub is derived again from its seed. */
    snprintf(path, sizeof path, "%s/relay-eu-west.pub", keys);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(run(&again, (const char *[]){"nkeys", local_json, "--dir", keys, NULL}), 0);
    ck_assert_str_eq(again, out);
    free(again);
    char *relay_pub = mr_test_read_file(path);
    relay_pub[strcspn(relay_pub, "\n")] = '\0';
    ck_assert_msg(strstr(out, relay_pub), "%s lacks %s", out, relay_pub);
    free(out);

    ck_assert_int_eq(
        run(&out, (const char *[]){"nats-conf",   local_json,    "--region",     "eu-west",
                                   "--store-dir", store,         "--nkeys-dir",  keys,
                                   "--tls-cert",  "s.pem",       "--tls-key",    "s.key",
                                   "--tls-ca",    "ca.pem",      "--client-tls", "--client-verify",
                                   "--client-ca", "clients.pem", "--out",        conf,
                                   NULL}),
        0);
    free(out);
    char *c = mr_test_read_file(conf);
    char want_key[128];
    snprintf(want_key, sizeof want_key, "{nkey: \"%s\", permissions: {", relay_pub);
    const char *want[] = {
        "accounts {\n  MERIDIAN {\n    jetstream: enabled\n",
        want_key,
        "# healthcheck of ap-south",
        "\"meridian.msg.eu-west.*\"",
        /* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one block, split for the width */
        "tls {\n  cert_file: \"s.pem\"\n  key_file: \"s.key\"\n  ca_file: \"clients.pem\"\n  "
        "timeout: 5\n  verify: true\n}\n",
        "  tls {\n    cert_file: \"s.pem\"\n    key_file: \"s.key\"\n    ca_file: \"ca.pem\"\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(c, want[i]), "config lacks %s:\n%s", want[i], c);
    ck_assert_msg(!strstr(c, seed), "a seed in the server config");
    free(seed);
    free(c);
    /* Two keys for one role (a rotation in progress): a user each. */
    snprintf(path, sizeof path, "%s/relay-eu-west.pub", keys);
    char two[256];
    snprintf(two, sizeof two, "%s\n\nUCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR\n",
             relay_pub);
    ck_assert_int_eq(mr_test_write_file(path, two), 0);
    ck_assert_int_eq(
        run(&out, (const char *[]){"nats-conf", local_json, "--region", "eu-west", "--store-dir",
                                   store, "--nkeys-dir", keys, "--out", conf, NULL}),
        0);
    free(out);
    c = mr_test_read_file(conf);
    ck_assert_msg(
        strstr(c, want_key) &&
            strstr(c, "{nkey: \"UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR\""),
        "%s", c);
    int users = 0;
    for (const char *p = c; (p = strstr(p, "{nkey: ")); p++)
        users++;
    ck_assert_int_eq(users, 10);
    free(c);
    free(relay_pub);

    ck_assert_int_eq(run(&out, (const char *[]){"nats-permissions", local_json, NULL}), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "not JSON: %s\n%s", je.text, out);
    json_t *relay =
        json_object_get(json_object_get(json_object_get(j, "users"), "relay"), "us-east");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(relay, "publish"), 0)),
                     "meridian.msg.us-east.*");
    ck_assert(json_is_false(json_object_get(relay, "allow_responses")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "account")), "MERIDIAN");
    json_decref(j);
    free(out);

    snprintf(path, sizeof path, "%s/healthcheck-us-east.pub", keys);
    ck_assert_int_eq(mr_test_write_file(path, "not a key\n"), 0);
    snprintf(path, sizeof path, "%s/healthcheck-us-east.nk", keys);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(run(&out, (const char *[]){"nats-conf", local_json, "--region", "eu-west",
                                                "--store-dir", store, "--nkeys-dir", keys, NULL}),
                     1);
    ck_assert_msg(strstr(out, "healthcheck-us-east.pub: not a NATS user public key") &&
                      strstr(out, "meridian-regions nkeys"),
                  "%s", out);
    free(out);
    static const struct {
        const char *args[16];
        const char *msg;
    } bad[] = {
        {{"nats-conf", local_json, "--region", "eu-west", "--store-dir", "x", "--client-verify",
          NULL},
         "--client-verify needs --client-tls"},
        {{"nats-conf", local_json, "--region", "eu-west", "--store-dir", "x", "--tls-cert", "c",
          "--tls-key", "k", "--tls-ca", "a", "--client-tls", "--client-ca", "x", NULL},
         "--client-ca needs --client-verify"},
        {{"nkeys", local_json, NULL}, "nkeys needs --dir"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(run(&out, bad[i].args), 1);
        ck_assert_msg(strstr(out, bad[i].msg), "case %zu: %s", i, out);
        free(out);
    }
}
END_TEST

/* Output that cannot be written (a full disk) fails the command with a
 * reason, whichever subcommand printed it and however much it was. */
START_TEST(test_output_unwritable)
{
    static const char *const cmds[][5] = {
        {"check", local_json, NULL},
        {"endpoints", local_json, NULL},
        {"listeners", local_json, NULL},
        {"nats-permissions", local_json, NULL},
        {"route", local_json, NULL},
        {"--version", NULL},
        {"--help", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *err;
        ck_assert_msg(run_to_full(&err, cmds[i]) == 1, "%s exited 0 with its output lost: %s",
                      cmds[i][0], err);
        ck_assert_msg(strstr(err, "meridian-regions: cannot write the output"), "%s: %s",
                      cmds[i][0], err);
        free(err);
    }
}
END_TEST

START_TEST(test_route_endpoints_listeners)
{
    char *out;
    ck_assert_int_eq(
        run(&out, (const char *[]){"route", local_json, "--healthy", "ap-south,us-east", NULL}), 0);
    ck_assert_msg(strstr(out, "eu-west (default) -> us-east: 127.2.0.1 127.2.0.2\n"), "%s", out);
    ck_assert_msg(strstr(out, "ap-south -> ap-south: 127.3.0.1 127.3.0.2\n"), "%s", out);
    free(out);
    ck_assert_int_eq(run(&out, (const char *[]){"route", local_json, "--healthy", "", NULL}), 0);
    ck_assert_msg(strstr(out, "us-east -> fail-open: 127.1.0.1 127.1.0.2 127.2.0.1 127.2.0.2 "
                              "127.3.0.1 127.3.0.2\n"),
                  "%s", out);
    free(out);
    ck_assert_int_eq(run(&out, (const char *[]){"route", local_json, "--healthy", "mars", NULL}),
                     1);
    free(out);

    ck_assert_int_eq(run(&out, (const char *[]){"endpoints", local_json, NULL}), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "endpoints is not JSON: %s\n%s", je.text, out);
    json_t *us = json_object_get(json_object_get(j, "regions"), "us-east");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(us, "nats_client_urls"), 0)),
                     "nats://127.2.0.10:17200");
    ck_assert_str_eq(json_string_value(json_object_get(us, "fqdn")), "us-east.ws.meridian.test.");
    ck_assert_str_eq(json_string_value(json_object_get(j, "ws_fqdn")), "ws.meridian.test.");
    ck_assert_int_eq(json_array_size(json_object_get(us, "relays")), 2);
    json_decref(j);
    free(out);

    ck_assert_int_eq(run(&out, (const char *[]){"listeners", local_json, NULL}), 0);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    /* 3 regions x (2 relays x 2 + 4 NATS + 2 control + 1 agent) + DNS, PostgreSQL, PowerDNS API */
    ck_assert_int_eq(lines, 3 * 11 + 3);
    ck_assert_msg(strstr(out, "nats-gateway\tap-south\tap-south-nats-1\t127.3.0.10\t17202\n"), "%s",
                  out);
    ck_assert_msg(strstr(out, "relay-admin\teu-west\teu-west-2\t127.1.0.2\t17110\n"), "%s", out);
    free(out);
}
END_TEST

int main(int argc, char **argv)
{
    regions_bin = argc > 1 ? argv[1] : getenv("MERIDIAN_REGIONS_BIN");
    if (!regions_bin) {
        fprintf(stderr, "usage: %s PATH-TO-meridian-regions\n", argv[0]);
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("regions_cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_check);
    tcase_add_test(tc, test_nats_conf);
    tcase_add_test(tc, test_nkeys_and_locked_conf);
    tcase_add_test(tc, test_route_endpoints_listeners);
    tcase_add_test(tc, test_output_unwritable);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
