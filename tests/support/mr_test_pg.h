/*
 * Test support: a real PostgreSQL server started for one test, from a fresh
 * copy of a cluster that initdb made once per build directory (as the
 * `postgres` user: PostgreSQL refuses root) in a temporary directory; the
 * server listens on a free loopback port with its unix socket inside the same
 * directory, so parallel tests never collide.
 */
#ifndef MR_TEST_PG_H
#define MR_TEST_PG_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct mr_test_pg {
    pid_t pid; /* the runuser process supervising postgres, 0 when stopped */
    int port;
    char *dir;          /* temporary directory (owned by the test) */
    char datadir[512];  /* dir/data */
    char log[512];      /* dir/postgres.log */
    char conninfo[256]; /* "host=127.0.0.1 port=P user=postgres dbname=postgres" */
} mr_test_pg;

/**
 * Copy the initdb'd cluster and start a server, waiting (with a deadline) until it accepts
 * connections. `fsync` false trades durability against a power cut for speed,
 * which tests that kill processes, not machines, can afford. Aborts the test
 * on failure: a test that cannot get its database fails.
 */
void mr_test_pg_start(mr_test_pg *pg, bool fsync);
/** Stop with a fast shutdown (clients are disconnected), waiting until it is down. */
void mr_test_pg_stop(mr_test_pg *pg);
/** Start again on the same port and data directory after mr_test_pg_stop(). */
void mr_test_pg_restart(mr_test_pg *pg);
/** Stop if running and remove the temporary directory. */
void mr_test_pg_destroy(mr_test_pg *pg);

/**
 * Run `sql` and return the first column of the first row as a malloc'd
 * string ("" when there is no row), or NULL on error (message in the log).
 */
char *mr_test_pg_value(mr_test_pg *pg, const char *sql);

#endif
