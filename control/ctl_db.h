/*
 * PostgreSQL sessions of the control plane: connecting (blocking, from a
 * worker thread, never from the event loop), applying migrations under an
 * advisory lock and partition maintenance.
 */
#ifndef CTL_DB_H
#define CTL_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/** Schema version after migrations (0 until a session has applied or checked them). */
int ctl_db_schema_version(void);
/** The newest migration this binary carries. */
int ctl_db_latest_version(void);

/**
 * Whether new sessions apply pending migrations themselves (`auto_migrate`,
 * the default) or refuse to work until `meridian-control migrate` has run.
 * Set once at start, before any session opens.
 */
void ctl_db_set_auto_migrate(bool on);

/** What a database's schema is, read without changing anything (ctl_db_inspect). */
typedef struct ctl_db_schema {
    int version;    /* highest applied migration, 0 for an empty database */
    int latest;     /* the newest migration this binary carries */
    int pending;    /* migrations of this binary not applied yet */
    char next[128]; /* the first pending migration's name, when pending > 0 */
    /* When version > latest: the newest migration applied and who applied it. */
    char newer_name[128];
    char newer_by[64]; /* "meridian-control 0.2.0", or "" when not recorded */
    char newer_at[40];
} ctl_db_schema;

/**
 * Read the schema state of the database `c` is connected to. Returns 0, or
 * -1 with `err` set (a query failed).
 */
int ctl_db_inspect(PGconn *c, ctl_db_schema *out, char *err, size_t errlen);

/**
 * The refusal for a database newer than this binary: which migration, who
 * applied it, which binary is needed and how to roll back. Into `err`.
 */
void ctl_db_newer_message(const ctl_db_schema *s, char *err, size_t errlen);

/**
 * Connect with `conninfo` (any libpq form, multi-host included) and make
 * sure the schema is this binary's: apply pending migrations (auto_migrate)
 * or refuse while any is pending; always refuse a newer schema. Returns the
 * connection, or NULL with `err` set.
 */
PGconn *ctl_db_open(const char *conninfo, const char *app_name, char *err, size_t errlen);

/**
 * Connect without touching the schema (for `migrate`, `migrate --check` and
 * the check at start). `timeout_s` > 0 overrides the conninfo's
 * connect_timeout.
 */
PGconn *ctl_db_connect(const char *conninfo, const char *app_name, int timeout_s, char *err,
                       size_t errlen);

/**
 * Apply pending migrations in one transaction per migration, holding a
 * session advisory lock so concurrent control instances apply each exactly
 * once. Each applied migration is recorded with the binary that applied it.
 * `applied` (may be NULL) gets how many this call applied. Returns the
 * schema version, or -1 with `err` set (a newer schema is refused).
 */
int ctl_db_migrate(PGconn *c, int *applied, char *err, size_t errlen);

/**
 * Create partitions ahead and drop expired ones. Returns the number of
 * partitions dropped, or -1 with `err` set.
 */
int ctl_db_maintain(PGconn *c, const char *interval_sql, int ahead, int retention_days, char *err,
                    size_t errlen);

/** True when the error of a failed call means the session is gone (reconnect). */
bool ctl_db_lost(PGconn *c);

#endif
