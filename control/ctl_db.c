/*
 * PostgreSQL sessions. Every thread that talks to the database owns its own
 * PGconn and uses the blocking libpq calls: the event loop never touches the
 * database, so blocking there is harmless and the code stays linear.
 * Migrations are embedded (ctl_migrations.c, generated) and applied under
 * pg_advisory_lock so that several instances starting together serialise;
 * each migration runs in its own transaction together with the insert into
 * schema_migrations, so a crash leaves either all of it or nothing.
 */
#include "ctl_db.h"
#include "ctl_migrations.h"
#include "mr_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An arbitrary constant naming Meridian's migration lock ("MRDN"). */
#define CTL_MIGRATION_LOCK 0x4d52444eLL

static _Atomic int schema_version;

int ctl_db_schema_version(void)
{
    return atomic_load(&schema_version);
}

int ctl_db_latest_version(void)
{
    return ctl_migrations_n ? ctl_migrations[ctl_migrations_n - 1].version : 0;
}

bool ctl_db_lost(PGconn *c)
{
    return c == NULL || PQstatus(c) != CONNECTION_OK;
}

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "%s", PQerrorMessage(c));
    PQclear(r);
    return rc;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

int ctl_db_migrate(PGconn *c, char *err, size_t errlen)
{
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%lld)", CTL_MIGRATION_LOCK);
    if (exec_ok(c, lock, err, errlen) != 0)
        return -1;
    int version = -1;
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen) != 0)
        goto out;
    PGresult *r = PQexec(c, "SELECT COALESCE(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
        PQclear(r);
        goto out;
    }
    int have = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (have > ctl_db_latest_version()) {
        /* A newer binary migrated this database; running old code on it is unsafe. */
        snprintf(err, errlen, "database schema version %d is newer than this binary's %d", have,
                 ctl_db_latest_version());
        goto out;
    }
    for (size_t i = 0; i < ctl_migrations_n; i++) {
        const ctl_migration *m = &ctl_migrations[i];
        if (m->version <= have)
            continue;
        mr_log_info("applying migration %s", m->name);
        if (exec_ok(c, "BEGIN", err, errlen) != 0)
            goto out;
        if (exec_ok(c, m->sql, err, errlen) != 0) {
            char why[400];
            snprintf(why, sizeof why, "%s", err);
            chomp(why);
            snprintf(err, errlen, "migration %s: %s", m->name, why);
            PQclear(PQexec(c, "ROLLBACK"));
            goto out;
        }
        char ver[16];
        snprintf(ver, sizeof ver, "%d", m->version);
        const char *params[2] = {ver, m->name};
        r = PQexecParams(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                         NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok || exec_ok(c, "COMMIT", err, errlen) != 0) {
            if (!ok)
                snprintf(err, errlen, "%s", PQerrorMessage(c));
            PQclear(PQexec(c, "ROLLBACK"));
            goto out;
        }
        have = m->version;
    }
    version = have;
    atomic_store(&schema_version, version);
out:;
    char unlock[96], ignored[64];
    snprintf(unlock, sizeof unlock, "SELECT pg_advisory_unlock(%lld)", CTL_MIGRATION_LOCK);
    exec_ok(c, unlock, ignored, sizeof ignored);
    return version;
}

/* Server notices ("relation already exists, skipping") go to the debug log, not stderr. */
static void on_notice(void *arg, const char *message)
{
    mr_log_debug("postgres: %s", message);
}

PGconn *ctl_db_open(const char *conninfo, const char *app_name, char *err, size_t errlen)
{
    /*
     * expand_dbname lets `conninfo` be a URI or key=value string while we add
     * application_name (shown in pg_stat_activity) as a separate keyword.
     */
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {conninfo, app_name, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
        chomp(err);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    if (ctl_db_migrate(c, err, errlen) < 0) {
        chomp(err);
        PQfinish(c);
        return NULL;
    }
    return c;
}

int ctl_db_maintain(PGconn *c, const char *interval_sql, int ahead, int retention_days, char *err,
                    size_t errlen)
{
    char ahead_s[16], ret_s[32];
    snprintf(ahead_s, sizeof ahead_s, "%d", ahead);
    snprintf(ret_s, sizeof ret_s, "%d days", retention_days);
    const char *params[3] = {interval_sql, ahead_s, ret_s};
    PGresult *r = PQexecParams(c, "SELECT meridian_maintain($1::interval, $2::int, $3::interval)",
                               3, NULL, params, NULL, NULL, 0);
    int dropped = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        dropped = atoi(PQgetvalue(r, 0, 0));
    else {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
        chomp(err);
    }
    PQclear(r);
    return dropped;
}
