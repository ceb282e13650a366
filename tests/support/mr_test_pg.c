/*
 * PostgreSQL for tests. The server runs under runuser as `postgres`; the
 * runuser process is our child and gets SIGTERM when the test process dies
 * (runuser forwards it to postgres), so a crashed test does not leave a
 * server behind. Readiness is polled with PQping until a deadline.
 */
#include "mr_test_pg.h"
#include "mr_test.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG_BIN "/usr/lib/postgresql/15/bin"

/* Run a command to completion with output appended to `log`; returns its exit status or -1. */
static int run(char *const argv[], const char *log, int timeout_ms)
{
    pid_t pid = mr_test_spawn(argv, log);
    int st = mr_test_wait_exit(pid, timeout_ms);
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Like mr_test_spawn(), but the child gets SIGTERM rather than SIGKILL when we die. */
static pid_t spawn_term_on_death(char *const argv[], const char *logpath)
{
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void server_spawn(mr_test_pg *pg)
{
    char port[16], listen[64];
    snprintf(port, sizeof port, "%d", pg->port);
    snprintf(listen, sizeof listen, "listen_addresses=127.0.0.1");
    char sock[600];
    snprintf(sock, sizeof sock, "unix_socket_directories=%s", pg->dir);
    char postgres[] = PG_BIN "/postgres";
    char *argv[] = {"runuser", "-u", "postgres", "--", postgres, "-D", pg->datadir,          "-p",
                    port,      "-c", listen,     "-c", sock,     "-c", "max_connections=50", NULL};
    pg->pid = spawn_term_on_death(argv, pg->log);
    int64_t deadline = mr_test_now_ms() + 30000;
    for (;;) {
        if (PQping(pg->conninfo) == PQPING_OK)
            return;
        ck_assert_msg(mr_test_alive(pg->pid), "postgres exited at start; see %s", pg->log);
        ck_assert_msg(mr_test_now_ms() < deadline, "postgres not ready in 30 s; see %s", pg->log);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* initdb into `datadir` (its parent must be writable by postgres), output to `log`. */
static void initdb(const char *datadir, const char *log)
{
    char initdb_bin[] = PG_BIN "/initdb";
    char *argv[] = {"runuser",       "-u",        "postgres", "--", initdb_bin, "-D",
                    (char *)datadir, "-A",        "trust",    "-U", "postgres", "-E",
                    "UTF8",          "--no-sync", NULL};
    int rc = run(argv, log, 60000);
    ck_assert_msg(rc == 0, "initdb failed (%d); see %s (is postgresql-15 installed?)", rc, log);
}

/*
 * initdb costs seconds of CPU and makes the same cluster every time, so it runs once per
 * build directory, into MR_TEST_PG_TEMPLATE, and every test starts from a copy of that (cp -a
 * as root keeps postgres's ownership and modes). The lock makes parallel tests wait for the
 * first one's initdb; the rename makes a template that exists a complete one.
 */
static void template_ready(const char *log)
{
    char lock[600], partial[600], version[600];
    snprintf(lock, sizeof lock, "%s.lock", MR_TEST_PG_TEMPLATE);
    snprintf(partial, sizeof partial, "%s.partial", MR_TEST_PG_TEMPLATE);
    snprintf(version, sizeof version, "%s/data/PG_VERSION", MR_TEST_PG_TEMPLATE);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "%s: %s", lock, strerror(errno));
    ck_assert_msg(flock(fd, LOCK_EX) == 0, "flock %s: %s", lock, strerror(errno));
    if (access(version, F_OK) != 0) {
        char *dir = mr_test_tmpdir("pg-template");
        char datadir[600];
        snprintf(datadir, sizeof datadir, "%s/data", dir);
        initdb(datadir, log);
        char *clear[] = {"rm", "-rf", partial, MR_TEST_PG_TEMPLATE, NULL};
        ck_assert_int_eq(run(clear, log, 30000), 0);
        ck_assert_msg(mkdir(partial, 0755) == 0, "mkdir %s: %s", partial, strerror(errno));
        char *copy[] = {"cp", "-a", datadir, partial, NULL};
        ck_assert_msg(run(copy, log, 60000) == 0, "cannot copy %s to %s; see %s", datadir, partial,
                      log);
        ck_assert_msg(rename(partial, MR_TEST_PG_TEMPLATE) == 0, "rename %s: %s", partial,
                      strerror(errno));
        char *rm[] = {"rm", "-rf", dir, NULL};
        run(rm, NULL, 30000);
        free(dir);
    }
    close(fd); /* releases the lock */
}

void mr_test_pg_start(mr_test_pg *pg, bool fsync)
{
    memset(pg, 0, sizeof *pg);
    pg->dir = mr_test_tmpdir("pg");
    snprintf(pg->datadir, sizeof pg->datadir, "%s/data", pg->dir);
    snprintf(pg->log, sizeof pg->log, "%s/postgres.log", pg->dir);
    /* The log is created by us (root) and must be writable by postgres. */
    ck_assert(mr_test_write_file(pg->log, "") == 0);
    chmod(pg->log, 0666);
    pg->port = mr_test_free_port();
    snprintf(pg->conninfo, sizeof pg->conninfo,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5", pg->port);

    template_ready(pg->log);
    char source[600];
    snprintf(source, sizeof source, "%s/data", MR_TEST_PG_TEMPLATE);
    char *copy[] = {"cp", "-a", source, pg->datadir, NULL};
    int rc = run(copy, pg->log, 60000);
    ck_assert_msg(rc == 0, "cannot copy %s to %s (%d); see %s", source, pg->datadir, rc, pg->log);
    if (!fsync) {
        char conf[600];
        snprintf(conf, sizeof conf, "%s/postgresql.conf", pg->datadir);
        FILE *f = fopen(conf, "a");
        ck_assert(f != NULL);
        int w = fputs("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n", f);
        ck_assert_msg(fclose(f) == 0 && w >= 0, "cannot write %s", conf);
    }
    server_spawn(pg);
}

void mr_test_pg_stop(mr_test_pg *pg)
{
    if (pg->pid <= 0)
        return;
    char pg_ctl[] = PG_BIN "/pg_ctl";
    char *argv[] = {"runuser", "-u",   "postgres", "--", pg_ctl, "-D",   pg->datadir,
                    "-m",      "fast", "-w",       "-t", "30",   "stop", NULL};
    run(argv, pg->log, 40000);
    /* runuser exits once postgres has; escalate only if it did not. */
    mr_test_stop(pg->pid, SIGTERM, 10000);
    pg->pid = 0;
}

void mr_test_pg_restart(mr_test_pg *pg)
{
    ck_assert(pg->pid == 0);
    server_spawn(pg);
}

void mr_test_pg_destroy(mr_test_pg *pg)
{
    mr_test_pg_stop(pg);
    if (pg->dir) {
        char *argv[] = {"rm", "-rf", pg->dir, NULL};
        run(argv, NULL, 30000);
        free(pg->dir);
        pg->dir = NULL;
    }
}

char *mr_test_pg_value(mr_test_pg *pg, const char *sql)
{
    PGconn *c = PQconnectdb(pg->conninfo);
    char *out = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK)
            out = strdup(PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "");
        else if (st == PGRES_COMMAND_OK)
            out = strdup("");
        else
            fprintf(stderr, "mr_test_pg_value: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    } else {
        fprintf(stderr, "mr_test_pg_value: connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return out;
}
