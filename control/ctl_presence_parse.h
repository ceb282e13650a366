/*
 * The control plane's presence input (ctl_presence.c) as it arrives from
 * NATS: the relays' deltas on meridian.presence.<room> and their heartbeats
 * on meridian.relay.hb. Any client with publish rights may send these, so
 * the parsers validate everything. Pure and free of libnats and libpq
 * (jansson and common/ only), so the fuzz build can compile them in
 * (tests/fuzz/fuzz_presence.c).
 */
#ifndef CTL_PRESENCE_PARSE_H
#define CTL_PRESENCE_PARSE_H

#include "mr_proto.h"

#include <stddef.h>
#include <stdint.h>

/* The deltas' subjects: this, then the room. */
#define CTL_PRESENCE_SUBJECT_PREFIX "meridian.presence."
/* A relay's instance id (mr_instance_valid). */
#define CTL_PRESENCE_NODE_MAX MR_INSTANCE_MAX
/* A user as tokens name them (MR_JWT_SUB_MAX). */
#define CTL_PRESENCE_USER_MAX 256
/* Larger NATS messages are not presence: a delta is about 400 bytes at most. */
#define CTL_PRESENCE_MSG_MAX 4096
/* The most sessions a relay may report for a user (the relays' own bound). */
#define CTL_PRESENCE_SESSIONS_MAX 10000000

typedef enum ctl_presence_kind {
    CTL_PRESENCE_SET,  /* a relay's sessions of a user in a room */
    CTL_PRESENCE_SEEN, /* a heartbeat */
    CTL_PRESENCE_BYE,  /* a relay leaving for good */
} ctl_presence_kind;

/** One validated message from NATS. */
typedef struct ctl_presence_item {
    ctl_presence_kind kind;
    char node[CTL_PRESENCE_NODE_MAX];
    char room[MR_ROOM_MAX + 1];
    char user[CTL_PRESENCE_USER_MAX + 1];
    int64_t seq;
    long sessions;
} ctl_presence_item;

/* Results of the parsers. */
#define CTL_PRESENCE_OK      0
#define CTL_PRESENCE_IGNORED 1    /* valid and not for us: a relay's snapshot request */
#define CTL_PRESENCE_BAD     (-1) /* malformed: dropped and counted */

/**
 * Parse a message of meridian.presence.<room> (`reply`: its reply subject or
 * NULL). Pure; `why` (may be NULL) says what was wrong on CTL_PRESENCE_BAD.
 */
int ctl_presence_parse_delta(const char *subject, const char *reply, const char *data, size_t len,
                             ctl_presence_item *out, const char **why);
/** Parse a message of meridian.relay.hb (a heartbeat or a bye). */
int ctl_presence_parse_heartbeat(const char *data, size_t len, ctl_presence_item *out,
                                 const char **why);

#endif
