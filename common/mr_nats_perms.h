/*
 * Who may do what on the bus: the subjects each Meridian role may publish
 * and subscribe to, one user per role and region. meridian-regions renders
 * these into nats-server configs, the test support starts servers with
 * them, and terraform/modules/topology derives the same lists (its
 * crosscheck compares them with `meridian-regions nats-permissions`). The
 * table with the reasons is in docs/architecture.md.
 */
#ifndef MR_NATS_PERMS_H
#define MR_NATS_PERMS_H

#include "mr_buf.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    MR_NATS_ROLE_RELAY,
    MR_NATS_ROLE_CONTROL,
    MR_NATS_ROLE_HEALTHCHECK,
    MR_NATS_NROLES
} mr_nats_role;

/* The account every Meridian user belongs to (JetStream enabled). */
#define MR_NATS_ACCOUNT "MERIDIAN"

typedef struct mr_nats_perms {
    char **pub; /* subjects the user may publish to */
    size_t npub;
    char **sub; /* subjects the user may subscribe to */
    size_t nsub;
    bool responses; /* may answer requests it received (nats-server allow_responses) */
} mr_nats_perms;

/** "relay", "control", "healthcheck". */
const char *mr_nats_role_name(mr_nats_role role);
/** The role named `name`, or -1. */
int mr_nats_role_find(const char *name);

/**
 * Fill `p` with the permissions of `role` for the user of `region`, in a
 * deployment of the regions `regions` (every region's stream name is
 * derived from these). Free with mr_nats_perms_free().
 */
void mr_nats_perms_build(mr_nats_perms *p, mr_nats_role role, const char *region,
                         const char *const *regions, size_t nregions);
void mr_nats_perms_free(mr_nats_perms *p);

/**
 * Append the nats-server `accounts` block: account MR_NATS_ACCOUNT with
 * JetStream and one nkey user per role and region, each with its
 * permissions. `pubs[i * MR_NATS_NROLES + role]` is the public key of
 * `role` in `regions[i]` ("U...", see mr_nkey.h), or several separated by
 * '\n' (a user each, while a key is rotated). Strings are written
 * double-quoted with JSON escapes, which the nats-server parser reads.
 */
void mr_nats_accounts_render(mr_buf *b, const char *const *regions, size_t nregions,
                             const char *const *pubs);

#endif
