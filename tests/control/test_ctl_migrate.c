/*
 * The schema step (`meridian-control migrate [--check]`), auto_migrate off,
 * and the refusal of a database newer than the binary, against a real
 * PostgreSQL (and nats-server for the daemon runs).
 */
#include "ctl_test_util.h"
#include "mr_test.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mr_test_nats nats;
static mr_test_pg pg;
static char *tmp;

static void setup(void)
{
    tmp = mr_test_tmpdir("ctl-migrate");
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
}

static void teardown(void)
{
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

/* Run meridian-control with `args` (after the binary); returns the exit status, output in `out`. */
static int run_ctl(const char *args, char **out)
{
    char log[700];
    snprintf(log, sizeof log, "%s/run.log", tmp);
    unlink(log);
    char *argv[16];
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", args);
    int n = 0;
    argv[n++] = CTL_BINARY;
    for (char *t = strtok(buf, " "); t && n < 15; t = strtok(NULL, " "))
        argv[n++] = t;
    argv[n] = NULL;
    int st = mr_test_wait_exit(mr_test_spawn(argv, log), 30000);
    *out = mr_test_read_file(log);
    ck_assert_msg(st != -1 && WIFEXITED(st), "meridian-control %s did not exit: %s", args, *out);
    return WEXITSTATUS(st);
}

/* Assert that `sql`'s first value is `want` (the value is freed). */
static void pg_is(const char *sql, const char *want)
{
    char *v = mr_test_pg_value(&pg, sql);
    ck_assert_msg(v && strcmp(v, want) == 0, "%s: %s, wanted %s", sql, v ? v : "(error)", want);
    free(v);
}

static void write_pg_only_config(char *path, size_t len)
{
    snprintf(path, len, "%s/pg-only.json", tmp);
    char text[600];
    snprintf(text, sizeof text, "{\"postgres\":\"%s\"}\n", pg.conninfo);
    ck_assert_int_eq(mr_test_write_file(path, text), 0);
}

START_TEST(test_migrate_step)
{
    char cfg[700], args[1024], *out;
    write_pg_only_config(cfg, sizeof cfg);
    /* A fresh database: everything pending, nothing changed by --check. */
    snprintf(args, sizeof args, "migrate --check --config %s", cfg);
    ck_assert_int_eq(run_ctl(args, &out), 3);
    ck_assert_msg(strstr(out, "migrations pending: the schema is at version 0") &&
                      strstr(out, "first 0001_init.sql"),
                  "%s", out);
    free(out);
    pg_is("SELECT to_regclass('schema_migrations') IS NULL", "t");

    /* A daemon with auto_migrate off waits for the step: not ready, and says why. */
    ctl_proc p;
    ctl_proc_init(&p, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", "\"auto_migrate\":false");
    ctl_proc_spawn(&p, NULL);
    ck_assert_int_eq(ctl_proc_wait_readyz(&p, "\"schema_version\":0", 15000), 503);
    int64_t deadline = mr_test_now_ms() + 10000;
    while (!ctl_proc_log_has(&p, "auto_migrate is off: run `meridian-control migrate")) {
        ck_assert_msg(mr_test_now_ms() < deadline, "no hint in %s", p.log);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    pg_is("SELECT to_regclass('schema_migrations') IS NULL", "t");

    /* The step itself, then the daemon becomes ready on its own. */
    char flag_args[1024];
    snprintf(flag_args, sizeof flag_args, "migrate --config %s", cfg);
    ck_assert_int_eq(run_ctl(flag_args, &out), 0);
    ck_assert_msg(strstr(out, "schema at version") && strstr(out, "migration(s) applied"), "%s",
                  out);
    free(out);
    ck_assert_msg(ctl_proc_wait_ready(&p, 20000), "not ready after migrate; see %s", p.log);
    ck_assert_int_eq(run_ctl(flag_args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "(0 migration(s) applied)"));
    free(out);
    snprintf(args, sizeof args, "migrate --check --config %s", cfg);
    ck_assert_int_eq(run_ctl(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "schema up to date"));
    free(out);
    /* Every migration records the binary that applied it. */
    pg_is("SELECT count(*) = (SELECT count(*) FROM schema_migrations) FROM schema_migrations "
          "WHERE applied_by = 'meridian-control " MERIDIAN_VERSION "'",
          "t");
    ck_assert_int_eq(ctl_proc_stop(&p), 0);
    ctl_proc_free(&p);

    /* Without a conninfo: a usage error, not a crash. */
    snprintf(args, sizeof args, "migrate --check");
    ck_assert_int_eq(run_ctl(args, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "postgres: a conninfo is required"));
    free(out);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
    char cfg[700], args[1024], *out;
    write_pg_only_config(cfg, sizeof cfg);
    snprintf(args, sizeof args, "migrate --config %s", cfg);
    ck_assert_int_eq(run_ctl(args, &out), 0);
    free(out);
    /* What a future version would leave behind. */
    char *r = mr_test_pg_value(&pg, "INSERT INTO schema_migrations (version, name, applied_by) "
                                    "VALUES (999, '0999_future.sql', 'meridian-control 9.9.9') "
                                    "RETURNING version");
    ck_assert_str_eq(r, "999");
    free(r);

    snprintf(args, sizeof args, "migrate --check --config %s", cfg);
    ck_assert_int_eq(run_ctl(args, &out), 1);
    ck_assert_msg(strstr(out, "schema is at version 999 (0999_future.sql, applied by "
                              "meridian-control 9.9.9 at ") &&
                      strstr(out, "newer than this meridian-control " MERIDIAN_VERSION) &&
                      strstr(out, "Run meridian-control 9.9.9 or newer") &&
                      strstr(out, "roll the database back by restoring the backup"),
                  "%s", out);
    free(out);
    snprintf(args, sizeof args, "migrate --config %s", cfg);
    ck_assert_int_eq(run_ctl(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "Run meridian-control 9.9.9 or newer"));
    free(out);

    /* The daemon (auto_migrate on) refuses to start and changes nothing. */
    ctl_proc p;
    ctl_proc_init(&p, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", NULL);
    ctl_proc_spawn(&p, NULL);
    int st = mr_test_wait_exit(p.pid, 20000);
    p.pid = 0;
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d; see %s", st,
                  p.log);
    ck_assert(ctl_proc_log_has(&p, "Run meridian-control 9.9.9 or newer"));
    r = mr_test_pg_value(&pg, "SELECT max(version) FROM schema_migrations");
    ck_assert_str_eq(r, "999");
    free(r);
    ctl_proc_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_migrate");
    TCase *tc = mr_test_case(s, "migrate", setup, teardown, 120);
    tcase_add_test(tc, test_migrate_step);
    tcase_add_test(tc, test_newer_schema_refused);
    return mr_test_run(s);
}
