/*
 * Rooms on this relay: who is a member, which users are present, and the
 * recent message ids used to drop fast-path duplicates. A room exists while
 * it has at least one member; the NATS subscription follows its lifetime.
 */
#ifndef RELAY_ROOM_H
#define RELAY_ROOM_H

#include "mr_map.h"
#include "mr_proto.h"

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct relay_session;

/* A frame held back from a member while its history is being fetched. */
typedef struct relay_held {
    struct relay_held *next;
    struct relay_out *out;
    char msg_id[MR_MSG_ID_LEN + 1];
} relay_held;

typedef struct relay_member {
    struct relay_room *room;
    struct relay_session *session;
    struct relay_member *room_prev, *room_next; /* links in the room's member list */
    struct relay_member *session_next;          /* link in the session's membership list */
    bool recovering;                            /* live frames are held until history is sent */
    bool presence_events;                       /* the member wants join/leave/update events */
    int64_t history_through; /* a resume sent history up to this seq: later commits for it are
                                repeats (a new room instance has no dedup state for them) */
    relay_held *held, *held_tail;
} relay_member;

/* Recent message ids, as a ring plus an open-addressed index into it. */
typedef struct relay_dedup {
    uint8_t (*ids)[16];
    uint32_t *index; /* slot+1 into ids, 0 = empty; twice the ring size */
    uint32_t cap, next, count;
} relay_dedup;

typedef struct relay_room {
    char name[MR_ROOM_MAX + 1];
    size_t name_len;
    relay_member *members;
    size_t member_count;
    mr_map
        users; /* user id -> (intptr_t) number of this relay's sessions of that user in the room */
    natsSubscription *sub;        /* fast path: meridian.msg.*.<room> */
    natsSubscription *commit_sub; /* meridian.commit.<room> (JetStream mode) */
    relay_dedup dedup;
    natsSubscription *presence_sub; /* meridian.presence.<room>: deltas and snapshot queries */
    mr_map remote;                  /* "user\x1fnode" -> sessions that relay reported */
    mr_map remote_totals;           /* user -> sum of its remote sessions */
    /* Commit repair (relay_repair.c). */
    bool repair_enabled, seq_known, repair_inflight;
    bool repair_backward; /* the request in flight reads the newest page below last_seq */
    int64_t last_seq;
    int64_t baseline_ms; /* when last_seq came from the baseline reply; 0 once looked behind it */
    int64_t repair_deadline_us, repair_last_us;
    mr_map awaiting; /* msg_id -> (intptr) ms when delivered on the fast path */
} relay_room;

typedef struct relay_rooms {
    mr_map by_name;
    uint32_t dedup_window;
} relay_rooms;

void relay_rooms_init(relay_rooms *rs, uint32_t dedup_window);
void relay_rooms_free(relay_rooms *rs);
relay_room *relay_room_find(relay_rooms *rs, const char *name, size_t len);

/**
 * Add `s` to the room, creating the room when needed. Sets *created when the
 * room is new (the caller subscribes) and *first_of_user when this is the
 * user's first session in the room on this relay (the caller announces it).
 * Returns the membership, or the existing one when already joined.
 */
relay_member *relay_room_join(relay_rooms *rs, const char *name, size_t len,
                              struct relay_session *s, const char *user, bool *created,
                              bool *first_of_user);
/**
 * Remove a membership. Sets *last_of_user when the user has no other session
 * in the room. Returns true when the room became empty; the caller then
 * unsubscribes and calls relay_room_destroy.
 */
bool relay_room_leave(relay_rooms *rs, relay_member *m, const char *user, bool *last_of_user);
void relay_room_destroy(relay_rooms *rs, relay_room *r);

/** Remember `msg_id` (32 hex chars); returns true when it was already seen. */
bool relay_dedup_seen(relay_dedup *d, uint32_t cap, const char *msg_id);

#endif
