/*
 * Rooms on this relay: who is a member, which users are present, and what
 * the members already got (delivery's ids and seqs, relay_dedup.h). A room
 * exists while it has at least one member; the NATS subscription follows its
 * lifetime, and joins wait until the server has confirmed it.
 *
 * Features keep per-room state of their own (presence's view of the other
 * relays, repair's seqs) in a slot they register once, and delivery keeps
 * per-member state (frames held for a resuming member); the room frees both
 * with the callbacks registered with them, without knowing what they are.
 */
#ifndef RELAY_ROOM_H
#define RELAY_ROOM_H

#include "mr_map.h"
#include "mr_proto.h"
#include "relay_dedup.h"

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct relay_conn;

/* Registrations of per-room or per-member state (presence, repair, delivery, resume: one each). */
#define RELAY_ROOM_SLOTS 6

struct relay_held;   /* frames held for a resuming member (relay_deliver.c) */
struct relay_resume; /* a join waiting for its subscription or replaying history (relay_resume.c) */

typedef struct relay_member {
    struct relay_room *room;
    struct relay_conn *conn;
    struct relay_member *room_prev, *room_next; /* links in the room's member list */
    struct relay_member *conn_next;             /* link in the connection's membership list */
    bool recovering;                            /* live frames are held until history is sent */
    bool presence_events;                       /* the member wants join/leave/update events */
    int64_t history_through; /* the member has every seq up to this (its `since`, then the history
                                a resume sent): commits for them are repeats to it */
    struct relay_held *held, *held_tail; /* delivery's; freed through its member callback */
    size_t held_bytes;                   /* bytes of the frames held */
    bool hold_bounded; /* the held frames count against max_outbound_bytes (relay_deliver_plan) */
    uint64_t stamp;    /* the room's stamp when it joined: it got fast-path deliveries above it */
    struct relay_resume *resume; /* resume's, until `joined` and the history are sent */
    mr_map *have; /* ids its join said it got without their seq (`have`): each comes as a
                     `commit`, never as a `message` (delivery's; NULL when none are left) */
} relay_member;

typedef struct relay_room {
    char name[MR_ROOM_MAX + 1];
    size_t name_len;
    relay_member *members;
    size_t member_count;
    mr_map
        users; /* user id -> (intptr_t) number of this relay's sessions of that user in the room */
    natsSubscription *sub;          /* fast path: meridian.msg.*.<room> */
    natsSubscription *commit_sub;   /* meridian.commit.<room> (JetStream mode) */
    natsSubscription *presence_sub; /* meridian.presence.<room>: deltas and snapshot queries */
    bool subscribing;               /* the server has not confirmed the subscriptions yet */
    uint64_t subscribe_id;          /* the confirmation this room waits for */
    int64_t subscribe_deadline_us;  /* joins fail when it has not come by then */
    relay_dedup awaiting;           /* ids delivered on the fast path, waiting for their commit */
    relay_dedup committed;          /* ids whose commit was delivered, for a while */
    relay_dedup replayed;           /* ids a resume sent from history (value: seq), for a while */
    relay_seqs seqs;                /* seqs delivered */
    uint64_t stamp;                 /* fast-path deliveries so far (each one's stamp) */
    void *state[RELAY_ROOM_SLOTS];  /* features' state, by registered slot; NULL until set */
} relay_room;

/** Frees a feature's per-room state (the room is being destroyed). */
typedef void (*relay_room_state_free_cb)(void *state);
/** Frees a module's per-member state (the membership is ending). */
typedef void (*relay_member_state_free_cb)(relay_member *m);

typedef struct relay_rooms {
    mr_map by_name;
    uint32_t dedup_window; /* most ids a room remembers in each relay_dedup (a power of two) */
    size_t subscribing;    /* rooms whose subscription is not confirmed yet */
    relay_room_state_free_cb state_free[RELAY_ROOM_SLOTS];
    relay_member_state_free_cb member_free[RELAY_ROOM_SLOTS];
    int slots;
} relay_rooms;

void relay_rooms_init(relay_rooms *rs, uint32_t dedup_window);
void relay_rooms_free(relay_rooms *rs);
/**
 * Register a module's state: returns the slot to use with relay_room.state[].
 * The room calls `room_free` (may be NULL) on a non-NULL state when it is
 * destroyed, and `member_free` (may be NULL) on every membership that ends.
 * Call before any room exists; aborts when the slots run out.
 */
int relay_rooms_add_state(relay_rooms *rs, relay_room_state_free_cb room_free,
                          relay_member_state_free_cb member_free);
relay_room *relay_room_find(relay_rooms *rs, const char *name, size_t len);

/**
 * Add `c` to the room, creating the room when needed. Sets *created when the
 * room is new (the caller subscribes) and *first_of_user when this is the
 * user's first session in the room on this relay (the caller announces it).
 * Returns the new membership. `c` must not be a member already (the caller
 * looks in its own list, relay_conn_member: a room of 15,000 members is not
 * walked for every join).
 */
relay_member *relay_room_join(relay_rooms *rs, const char *name, size_t len, struct relay_conn *c,
                              const char *user, bool *created, bool *first_of_user);
/**
 * Remove a membership and free it (with every module's state in it). Sets
 * *last_of_user when the user has no other session in the room. Returns true
 * when the room became empty; the caller then unsubscribes and calls
 * relay_room_destroy.
 */
bool relay_room_leave(relay_rooms *rs, relay_member *m, const char *user, bool *last_of_user);
/** Forget the room and free it with every feature's state in it. */
void relay_room_destroy(relay_rooms *rs, relay_room *r);

#endif
