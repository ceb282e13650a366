/*
 * PostgreSQL sessions. Every thread that talks to the database owns its own
 * PGconn and uses the blocking libpq calls: the event loop never touches the
 * database, so blocking there is harmless and the code stays linear.
 * Migrations are embedded (ctl_migrations.c, generated) and applied under
 * pg_advisory_lock so that several instances starting together serialise;
 * each migration runs in its own transaction together with the insert into
 * schema_migrations, so a crash leaves either all of it or nothing. The
 * insert records which binary applied it (applied_by), so that an older
 * binary meeting that schema can say which version it needs. Migrations
 * are forward-only: rolling back means restoring the backup taken before
 * the upgrade (docs/operations.md).
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
static _Atomic bool auto_migrate = true;

void ctl_db_set_auto_migrate(bool on)
{
    atomic_store(&auto_migrate, on);
}

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

int ctl_db_inspect(PGconn *c, ctl_db_schema *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->latest = ctl_db_latest_version();
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
        chomp(err);
        PQclear(r);
        return -1;
    }
    bool exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (exists) {
        /* to_jsonb: applied_by is read whether or not this database has the column yet. */
        r = PQexec(c, "SELECT version, name, COALESCE(to_jsonb(s)->>'applied_by', ''),"
                      " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                      " FROM schema_migrations s ORDER BY version DESC LIMIT 1");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(err, errlen, "%s", PQerrorMessage(c));
            chomp(err);
            PQclear(r);
            return -1;
        }
        if (PQntuples(r) == 1) {
            out->version = atoi(PQgetvalue(r, 0, 0));
            if (out->version > out->latest) {
                snprintf(out->newer_name, sizeof out->newer_name, "%s", PQgetvalue(r, 0, 1));
                snprintf(out->newer_by, sizeof out->newer_by, "%s", PQgetvalue(r, 0, 2));
                snprintf(out->newer_at, sizeof out->newer_at, "%s", PQgetvalue(r, 0, 3));
            }
        }
        PQclear(r);
    }
    for (size_t i = 0; i < ctl_migrations_n; i++) {
        if (ctl_migrations[i].version <= out->version)
            continue;
        if (out->pending++ == 0)
            snprintf(out->next, sizeof out->next, "%s", ctl_migrations[i].name);
    }
    return 0;
}

void ctl_db_newer_message(const ctl_db_schema *s, char *err, size_t errlen)
{
    char by[160] = "";
    if (s->newer_by[0])
        snprintf(by, sizeof by, ", applied by %s at %s", s->newer_by, s->newer_at);
    else if (s->newer_at[0])
        snprintf(by, sizeof by, ", applied at %s", s->newer_at);
    snprintf(err, errlen,
             "the database schema is at version %d (%s%s), newer than this meridian-control %s "
             "knows (version %d): refusing to use it. Run %s or newer against this database, or "
             "roll the database back by restoring the backup taken before that upgrade "
             "(docs/operations.md, \"Backup, restore and rolling back\"); migrations are "
             "forward-only",
             s->version, s->newer_name, by, MERIDIAN_VERSION, s->latest,
             s->newer_by[0] ? s->newer_by : "the meridian-control that migrated it");
}

int ctl_db_migrate(PGconn *c, int *applied, char *err, size_t errlen)
{
    if (applied)
        *applied = 0;
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%lld)", CTL_MIGRATION_LOCK);
    if (exec_ok(c, lock, err, errlen) != 0)
        return -1;
    int version = -1;
    ctl_db_schema st;
    /* A newer schema is refused before anything is created or altered. */
    if (ctl_db_inspect(c, &st, err, errlen) != 0)
        goto out;
    if (st.version > st.latest) {
        ctl_db_newer_message(&st, err, errlen);
        goto out;
    }
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(), applied_by text)",
                err, errlen) != 0)
        goto out;
    /* Databases migrated before applied_by existed get the column (NULL for their rows). */
    if (st.pending > 0 &&
        exec_ok(c, "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS applied_by text", err,
                errlen) != 0)
        goto out;
    int have = st.version;
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
        const char *params[3] = {ver, m->name, "meridian-control " MERIDIAN_VERSION};
        PGresult *r = PQexecParams(
            c, "INSERT INTO schema_migrations (version, name, applied_by) VALUES ($1, $2, $3)", 3,
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
        if (applied)
            (*applied)++;
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

PGconn *ctl_db_connect(const char *conninfo, const char *app_name, int timeout_s, char *err,
                       size_t errlen)
{
    /*
     * expand_dbname lets `conninfo` be a URI or key=value string while we add
     * application_name (shown in pg_stat_activity) as a separate keyword.
     */
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", timeout_s);
    const char *keys[] = {"dbname", "application_name", timeout_s > 0 ? "connect_timeout" : NULL,
                          NULL};
    const char *vals[] = {conninfo, app_name, timeout, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
        chomp(err);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    return c;
}

PGconn *ctl_db_open(const char *conninfo, const char *app_name, char *err, size_t errlen)
{
    PGconn *c = ctl_db_connect(conninfo, app_name, 0, err, errlen);
    if (!c)
        return NULL;
    if (atomic_load(&auto_migrate)) {
        if (ctl_db_migrate(c, NULL, err, errlen) < 0)
            goto fail;
        return c;
    }
    /* auto_migrate off: the schema must be exactly this binary's; `migrate` changes it. */
    ctl_db_schema st;
    if (ctl_db_inspect(c, &st, err, errlen) != 0)
        goto fail;
    if (st.version > st.latest) {
        ctl_db_newer_message(&st, err, errlen);
        goto fail;
    }
    if (st.pending > 0) {
        snprintf(err, errlen,
                 "the database schema is at version %d and this meridian-control needs %d "
                 "(%d migration(s) pending, first %s); auto_migrate is off: run "
                 "`meridian-control migrate --config FILE`",
                 st.version, st.latest, st.pending, st.next);
        goto fail;
    }
    atomic_store(&schema_version, st.version);
    return c;
fail:
    chomp(err);
    PQfinish(c);
    return NULL;
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
