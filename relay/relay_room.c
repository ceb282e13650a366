/*
 * Room table. Members are kept in a doubly linked list per room so leave is
 * O(1) and fan-out walks the list; each session keeps its memberships in a
 * singly linked list, since a session holds few rooms.
 *
 * The dedup ring remembers the last `dedup_window` message ids of the room.
 * Retried publishes reach core NATS subscribers twice even when JetStream
 * drops the duplicate, so relays must recognise repeats themselves.
 */
#include "relay_room.h"
#include "mr_alloc.h"
#include "relay_out.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void relay_rooms_init(relay_rooms *rs, uint32_t dedup_window)
{
    mr_map_init(&rs->by_name);
    /* The dedup index masks hashes, so the window is a power of two. */
    uint32_t w = 16;
    while (w < dedup_window && w < (1u << 20))
        w <<= 1;
    rs->dedup_window = w;
}

typedef struct remote_entry_head {
    char *user; /* relay_presence's entries start with the user they own */
} remote_entry_head;

static void free_remote(void *p)
{
    free(((remote_entry_head *)p)->user);
    free(p);
}

static void room_free(void *p)
{
    relay_room *r = p;
    mr_map_free(&r->users, NULL);
    mr_map_free(&r->remote, free_remote);
    mr_map_free(&r->remote_totals, NULL);
    if (r->repair_enabled)
        mr_map_free(&r->awaiting, NULL);
    free(r->dedup.ids);
    free(r->dedup.index);
    free(r);
}

void relay_rooms_free(relay_rooms *rs)
{
    mr_map_free(&rs->by_name, room_free);
}

relay_room *relay_room_find(relay_rooms *rs, const char *name, size_t len)
{
    return mr_map_get(&rs->by_name, name, len);
}

relay_member *relay_room_join(relay_rooms *rs, const char *name, size_t len,
                              struct relay_session *s, const char *user, bool *created,
                              bool *first_of_user)
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
        mr_map_init(&r->remote);
        mr_map_init(&r->remote_totals);
        mr_map_put(&rs->by_name, name, len, r);
        *created = true;
    } else {
        for (relay_member *m = r->members; m; m = m->room_next)
            if (m->session == s)
                return m;
    }
    relay_member *m = mr_calloc(1, sizeof *m);
    m->room = r;
    m->session = s;
    m->room_next = r->members;
    if (r->members)
        r->members->room_prev = m;
    r->members = m;
    r->member_count++;
    size_t ul = strlen(user);
    intptr_t n = (intptr_t)mr_map_get(&r->users, user, ul);
    mr_map_put(&r->users, user, ul, (void *)(n + 1));
    *first_of_user = n == 0;
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
    while (m->held) {
        relay_held *h = m->held;
        m->held = h->next;
        relay_out_unref(h->out);
        free(h);
    }
    free(m);
    return r->member_count == 0;
}

void relay_room_destroy(relay_rooms *rs, relay_room *r)
{
    mr_map_del(&rs->by_name, r->name, r->name_len);
    room_free(r);
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

bool relay_dedup_seen(relay_dedup *d, uint32_t cap, const char *msg_id)
{
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(hexval(msg_id[2 * i]) << 4 | hexval(msg_id[2 * i + 1]));
    if (!d->ids) {
        d->cap = cap;
        d->ids = mr_calloc(cap, 16);
        d->index = mr_calloc(cap * 2, sizeof(uint32_t));
    }
    uint32_t mask = d->cap * 2 - 1; /* cap is rounded to a power of two below */
    uint32_t h;
    memcpy(&h, id, sizeof h);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t slot = d->index[i];
        if (slot == 0)
            break;
        if (memcmp(d->ids[slot - 1], id, 16) == 0)
            return true;
    }
    /* Evict the oldest id when the ring is full, then insert. */
    uint32_t pos = d->next;
    if (d->count == d->cap) {
        uint32_t oh;
        memcpy(&oh, d->ids[pos], sizeof oh);
        uint32_t i = oh & mask;
        while (d->index[i] != pos + 1)
            i = (i + 1) & mask;
        /* Backward-shift deletion keeps probe chains intact without tombstones. */
        uint32_t j = i;
        for (;;) {
            d->index[i] = 0;
            for (;;) {
                j = (j + 1) & mask;
                if (d->index[j] == 0)
                    goto deleted;
                uint32_t jh;
                memcpy(&jh, d->ids[d->index[j] - 1], sizeof jh);
                uint32_t k = jh & mask;
                if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
                    continue;
                break;
            }
            d->index[i] = d->index[j];
            i = j;
        }
    deleted:;
    } else {
        d->count++;
    }
    memcpy(d->ids[pos], id, 16);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        if (d->index[i] == 0) {
            d->index[i] = pos + 1;
            break;
        }
    }
    d->next = (pos + 1) % d->cap;
    return false;
}
