/*
 * Room table. Members are kept in a doubly linked list per room so leave is
 * O(1) and fan-out walks the list; each connection keeps its memberships in a
 * singly linked list, since a connection holds few rooms.
 *
 * Delivery's memory of the room (relay_dedup.c) lives here so that it goes
 * with the room; relay_deliver.c fills it.
 */
#include "relay_room.h"
#include "mr_alloc.h"
#include "relay_metrics.h"
#include "mr_log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The largest dedup window: 2^20 ids, 32 MiB per room and structure at most. */
#define RELAY_DEDUP_WINDOW_MAX (1u << 20)

void relay_rooms_init(relay_rooms *rs, uint32_t dedup_window)
{
    memset(rs, 0, sizeof *rs);
    mr_map_init(&rs->by_name);
    /* The dedup index masks hashes, so the window is a power of two. */
    uint32_t w = 16;
    while (w < dedup_window && w < RELAY_DEDUP_WINDOW_MAX)
        w <<= 1;
    rs->dedup_window = w;
}

int relay_rooms_add_state(relay_rooms *rs, relay_room_state_free_cb room_free,
                          relay_member_state_free_cb member_free)
{
    if (rs->slots == RELAY_ROOM_SLOTS) {
        mr_log_error("rooms: more than %d modules keep per-room state", RELAY_ROOM_SLOTS);
        abort();
    }
    rs->state_free[rs->slots] = room_free;
    rs->member_free[rs->slots] = member_free;
    return rs->slots++;
}

static void room_free(relay_rooms *rs, relay_room *r)
{
    for (int i = 0; i < rs->slots; i++)
        if (r->state[i] && rs->state_free[i])
            rs->state_free[i](r->state[i]);
    mr_map_free(&r->users, NULL);
    relay_dedup_free(&r->awaiting);
    relay_dedup_free(&r->committed);
    relay_dedup_free(&r->replayed);
    relay_seqs_free(&r->seqs);
    if (r->subscribing)
        rs->subscribing--;
    free(r);
}

void relay_rooms_free(relay_rooms *rs)
{
    size_t b;
    for (mr_map_entry *e = mr_map_first(&rs->by_name, &b); e; e = mr_map_next(&rs->by_name, &b, e))
        room_free(rs, e->value);
    mr_map_free(&rs->by_name, NULL);
}

relay_room *relay_room_find(relay_rooms *rs, const char *name, size_t len)
{
    return mr_map_get(&rs->by_name, name, len);
}

relay_member *relay_room_join(relay_rooms *rs, const char *name, size_t len, struct relay_conn *c,
                              const char *user, bool *created, bool *first_of_user)
{
    *created = false;
    *first_of_user = false;
    relay_room *r = relay_room_find(rs, name, len);
    if (!r) {
        r = mr_calloc(1, sizeof *r);
        memcpy(r->name, name, len);
        r->name[len] = '\0';
        r->name_len = len;
        mr_map_init(&r->users);
        mr_map_put(&rs->by_name, name, len, r);
        *created = true;
    }
    relay_member *m = mr_calloc(1, sizeof *m);
    m->room = r;
    m->conn = c;
    m->stamp = r->stamp;
    m->room_next = r->members;
    if (r->members)
        r->members->room_prev = m;
    r->members = m;
    r->member_count++;
    size_t ul = strlen(user);
    intptr_t n = (intptr_t)mr_map_get(&r->users, user, ul);
    mr_map_put(&r->users, user, ul, (void *)(n + 1));
    *first_of_user = n == 0;
    mr_metric_inc(&relay_m.joins);
    mr_metric_inc(&relay_m.members);
    return m;
}

bool relay_room_leave(relay_rooms *rs, relay_member *m, const char *user, bool *last_of_user)
{
    relay_room *r = m->room;
    if (m->room_prev)
        m->room_prev->room_next = m->room_next;
    else
        r->members = m->room_next;
    if (m->room_next)
        m->room_next->room_prev = m->room_prev;
    r->member_count--;
    size_t ul = strlen(user);
    intptr_t n = (intptr_t)mr_map_get(&r->users, user, ul);
    if (n <= 1) {
        mr_map_del(&r->users, user, ul);
        *last_of_user = true;
    } else {
        mr_map_put(&r->users, user, ul, (void *)(n - 1));
        *last_of_user = false;
    }
    for (int i = 0; i < rs->slots; i++)
        if (rs->member_free[i])
            rs->member_free[i](m);
    free(m);
    mr_metric_add(&relay_m.members, -1);
    return r->member_count == 0;
}

void relay_room_destroy(relay_rooms *rs, relay_room *r)
{
    mr_map_del(&rs->by_name, r->name, r->name_len);
    room_free(rs, r);
}
