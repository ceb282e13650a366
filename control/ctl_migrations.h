/* The schema migrations, embedded from control/migrations/ at build time. */
#ifndef CTL_MIGRATIONS_H
#define CTL_MIGRATIONS_H

#include <stddef.h>

typedef struct ctl_migration {
    int version;
    const char *name;
    const char *sql;
} ctl_migration;

/** Sorted by version. */
extern const ctl_migration ctl_migrations[];
extern const size_t ctl_migrations_n;

#endif
