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
 * Connect with `conninfo` (any libpq form, multi-host included) and bring the
 * schema up to date. Returns the connection, or NULL with `err` set.
 */
PGconn *ctl_db_open(const char *conninfo, const char *app_name, char *err, size_t errlen);

/**
 * Apply pending migrations in one transaction per migration, holding a
 * session advisory lock so concurrent control instances apply each exactly
 * once. Returns the schema version, or -1 with `err` set.
 */
int ctl_db_migrate(PGconn *c, char *err, size_t errlen);

/**
 * Create partitions ahead and drop expired ones. Returns the number of
 * partitions dropped, or -1 with `err` set.
 */
int ctl_db_maintain(PGconn *c, const char *interval_sql, int ahead, int retention_days, char *err,
                    size_t errlen);

/** True when the error of a failed call means the session is gone (reconnect). */
bool ctl_db_lost(PGconn *c);

#endif
