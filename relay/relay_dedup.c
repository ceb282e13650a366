/*
 * Fast-path dedup.
 *
 * Retried publishes reach core NATS subscribers twice even when JetStream
 * drops the duplicate, and a relay's own NATS copy of what it delivered
 * locally comes back, so relays recognise repeats themselves. The ring keeps
 * the last `cap` ids; the index (twice the ring, linear probing, hashed by
 * the id's first four bytes, which are already uniform: ids are SHA-256
 * prefixes) finds one in a probe or two. Eviction of the oldest id uses
 * backward-shift deletion, so probe chains stay intact without tombstones.
 */
#include "relay_dedup.h"
#include "mr_alloc.h"
#include "mr_proto.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(MR_MSG_ID_LEN == 2 * RELAY_DEDUP_ID_BYTES, "a message id is 16 bytes in hex");

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static uint32_t home_of(const uint8_t *id)
{
    uint32_t h;
    memcpy(&h, id, sizeof h);
    return h;
}

bool relay_dedup_seen(relay_dedup *d, uint32_t cap, const char *msg_id)
{
    uint8_t id[RELAY_DEDUP_ID_BYTES];
    for (int i = 0; i < RELAY_DEDUP_ID_BYTES; i++)
        id[i] = (uint8_t)(hexval(msg_id[2 * i]) << 4 | hexval(msg_id[2 * i + 1]));
    if (!d->ids) {
        d->cap = cap;
        d->ids = mr_calloc(cap, RELAY_DEDUP_ID_BYTES);
        d->index = mr_calloc(cap * 2, sizeof(uint32_t));
    }
    uint32_t mask = d->cap * 2 - 1;
    uint32_t h = home_of(id);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t slot = d->index[i];
        if (slot == 0)
            break;
        if (memcmp(d->ids[slot - 1], id, RELAY_DEDUP_ID_BYTES) == 0)
            return true;
    }
    /* Evict the oldest id when the ring is full, then insert. */
    uint32_t pos = d->next;
    if (d->count == d->cap) {
        uint32_t i = home_of(d->ids[pos]) & mask;
        while (d->index[i] != pos + 1)
            i = (i + 1) & mask;
        uint32_t j = i;
        for (;;) {
            d->index[i] = 0;
            for (;;) {
                j = (j + 1) & mask;
                if (d->index[j] == 0)
                    goto deleted;
                uint32_t k = home_of(d->ids[d->index[j] - 1]) & mask;
                /* An entry whose home lies cyclically in (i, j] must stay where it is. */
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
    memcpy(d->ids[pos], id, RELAY_DEDUP_ID_BYTES);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        if (d->index[i] == 0) {
            d->index[i] = pos + 1;
            break;
        }
    }
    d->next = (pos + 1) % d->cap;
    return false;
}

void relay_dedup_free(relay_dedup *d)
{
    free(d->ids);
    free(d->index);
    memset(d, 0, sizeof *d);
}
