/*
 * Remembered ids and delivered seqs.
 *
 * relay_dedup is a ring of ids in the order they were added, with an
 * open-addressed index (twice the ring, linear probing, hashed by the id's
 * first four bytes, which are already uniform: ids are SHA-256 prefixes)
 * that finds one in a probe or two. Removing an id from the middle leaves a
 * hole in the ring, skipped when it reaches the head; its index entry goes
 * by backward-shift deletion, so probe chains stay intact without
 * tombstones. The ring doubles when it runs out of slots (up to the cap),
 * is compacted when holes take half of it, and halves when expiry leaves it
 * mostly empty: memory follows what is remembered, not the peak.
 *
 * relay_seqs keeps `through` and a sorted array of the seqs delivered beyond
 * it; seqs are contiguous per room, so out-of-order arrivals fill the gap and
 * the array stays as small as the reordering.
 */
#include "relay_dedup.h"
#include "mr_alloc.h"
#include "mr_proto.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(MR_MSG_ID_LEN == 2 * RELAY_DEDUP_ID_BYTES, "a message id is 16 bytes in hex");

/* The smallest ring: 16 ids. */
#define MIN_CAP 16
/* A slot whose id was removed. */
#define HOLE INT64_MIN

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

void relay_dedup_key(const char *msg_id, uint8_t out[RELAY_DEDUP_ID_BYTES])
{
    for (int i = 0; i < RELAY_DEDUP_ID_BYTES; i++)
        out[i] = (uint8_t)(hexval(msg_id[2 * i]) << 4 | hexval(msg_id[2 * i + 1]));
}

static uint32_t home_of(const uint8_t *id)
{
    uint32_t h;
    memcpy(&h, id, sizeof h);
    return h;
}

/* The index position holding `id`, or -1. */
static int64_t find(const relay_dedup *d, const uint8_t *id)
{
    if (!d->cap)
        return -1;
    uint32_t mask = d->cap * 2 - 1;
    for (uint32_t i = home_of(id) & mask;; i = (i + 1) & mask) {
        uint32_t slot = d->index[i];
        if (slot == 0)
            return -1;
        if (memcmp(d->ids[slot - 1], id, RELAY_DEDUP_ID_BYTES) == 0)
            return i;
    }
}

bool relay_dedup_has(const relay_dedup *d, const uint8_t *id)
{
    return find(d, id) >= 0;
}

bool relay_dedup_get(const relay_dedup *d, const uint8_t *id, int64_t *val)
{
    int64_t i = find(d, id);
    if (i < 0)
        return false;
    *val = d->val[d->index[i] - 1];
    return true;
}

static void index_insert(relay_dedup *d, uint32_t slot)
{
    uint32_t mask = d->cap * 2 - 1;
    for (uint32_t i = home_of(d->ids[slot]) & mask;; i = (i + 1) & mask) {
        if (d->index[i] == 0) {
            d->index[i] = slot + 1;
            return;
        }
    }
}

/* Empty index position `i` by backward-shift deletion. */
static void index_delete(relay_dedup *d, uint32_t i)
{
    uint32_t mask = d->cap * 2 - 1;
    uint32_t j = i;
    for (;;) {
        d->index[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (d->index[j] == 0)
                return;
            uint32_t k = home_of(d->ids[d->index[j] - 1]) & mask;
            /* An entry whose home lies cyclically in (i, j] must stay where it is. */
            if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        d->index[i] = d->index[j];
        i = j;
    }
}

/* Rebuild into a ring of `cap` slots, oldest first, without holes. */
static void rebuild(relay_dedup *d, uint32_t cap)
{
    uint8_t(*ids)[RELAY_DEDUP_ID_BYTES] = mr_malloc((size_t)cap * RELAY_DEDUP_ID_BYTES);
    int64_t *t = mr_malloc((size_t)cap * sizeof *t);
    int64_t *val = mr_malloc((size_t)cap * sizeof *val);
    uint32_t n = 0;
    for (uint32_t k = 0; k < d->len; k++) {
        uint32_t s = (d->head + k) & (d->cap - 1);
        if (d->t_ms[s] == HOLE)
            continue;
        memcpy(ids[n], d->ids[s], RELAY_DEDUP_ID_BYTES);
        val[n] = d->val[s];
        t[n++] = d->t_ms[s];
    }
    free(d->ids);
    free(d->t_ms);
    free(d->val);
    free(d->index);
    d->ids = ids;
    d->t_ms = t;
    d->val = val;
    d->cap = cap;
    d->index = mr_calloc((size_t)cap * 2, sizeof(uint32_t));
    d->head = 0;
    d->len = d->count = n;
    for (uint32_t s = 0; s < n; s++)
        index_insert(d, s);
}

/* Move the head past holes. */
static void trim_head(relay_dedup *d)
{
    while (d->len && d->t_ms[d->head] == HOLE) {
        d->head = (d->head + 1) & (d->cap - 1);
        d->len--;
    }
}

static void drop_slot(relay_dedup *d, uint32_t slot)
{
    int64_t i = find(d, d->ids[slot]);
    index_delete(d, (uint32_t)i);
    d->t_ms[slot] = HOLE;
    d->count--;
    trim_head(d);
}

int relay_dedup_add(relay_dedup *d, const uint8_t *id, int64_t now_ms, int64_t val, uint32_t max)
{
    if (d->count >= max)
        return -1;
    if (d->len == d->cap) {
        /*
         * Out of slots: grow while more than half are live and the ring is
         * below the cap, else squeeze the holes out (count < max <= cap, so
         * there is at least one).
         */
        uint32_t cap = d->cap ? d->cap : MIN_CAP;
        if (d->cap && d->count > d->cap / 2 && d->cap < max)
            cap = d->cap * 2;
        rebuild(d, cap);
    }
    uint32_t slot = (d->head + d->len) & (d->cap - 1);
    memcpy(d->ids[slot], id, RELAY_DEDUP_ID_BYTES);
    d->t_ms[slot] = now_ms;
    d->val[slot] = val;
    d->len++;
    d->count++;
    index_insert(d, slot);
    return 0;
}

bool relay_dedup_remove(relay_dedup *d, const uint8_t *id, int64_t *val)
{
    int64_t i = find(d, id);
    if (i < 0)
        return false;
    uint32_t slot = d->index[i] - 1;
    if (val)
        *val = d->val[slot];
    index_delete(d, (uint32_t)i);
    d->t_ms[slot] = HOLE;
    d->count--;
    trim_head(d);
    return true;
}

void relay_dedup_drop_oldest(relay_dedup *d)
{
    if (d->count)
        drop_slot(d, d->head);
}

void relay_dedup_expire(relay_dedup *d, int64_t before_ms)
{
    while (d->count && d->t_ms[d->head] < before_ms)
        drop_slot(d, d->head);
    if (d->count == 0 && d->cap) {
        relay_dedup_free(d);
        return;
    }
    if (d->cap > MIN_CAP && d->count < d->cap / 8)
        rebuild(d, d->cap / 2);
}

int64_t relay_dedup_oldest(const relay_dedup *d)
{
    return d->count ? d->t_ms[d->head] : INT64_MAX;
}

void relay_dedup_free(relay_dedup *d)
{
    free(d->ids);
    free(d->t_ms);
    free(d->val);
    free(d->index);
    memset(d, 0, sizeof *d);
}

/* ---- seqs ---- */

/* Position of the first element of above[] >= seq. */
static uint32_t lower_bound(const relay_seqs *s, int64_t seq)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->above[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Move `through` over the seqs of above[] that now continue it. */
static void absorb(relay_seqs *s)
{
    uint32_t k = 0;
    while (k < s->n && s->above[k] <= s->through + 1) {
        if (s->above[k] == s->through + 1)
            s->through++;
        k++;
    }
    if (k) {
        memmove(s->above, s->above + k, (size_t)(s->n - k) * sizeof *s->above);
        s->n -= k;
    }
}

bool relay_seqs_has(const relay_seqs *s, int64_t seq)
{
    if (seq <= s->through)
        return true;
    uint32_t k = lower_bound(s, seq);
    return k < s->n && s->above[k] == seq;
}

bool relay_seqs_add(relay_seqs *s, int64_t seq)
{
    if (relay_seqs_has(s, seq))
        return false;
    if (seq == s->through + 1) {
        s->through = seq;
        absorb(s);
        return true;
    }
    if (s->n == RELAY_SEQS_ABOVE_MAX) {
        /*
         * The oldest gap has stayed open for thousands of seqs: its commits
         * are not coming (and repair did not find them). Give it up.
         */
        s->through = s->above[0];
        absorb(s);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->above = mr_realloc(s->above, (size_t)s->cap * sizeof *s->above);
    }
    uint32_t k = lower_bound(s, seq);
    memmove(s->above + k + 1, s->above + k, (size_t)(s->n - k) * sizeof *s->above);
    s->above[k] = seq;
    s->n++;
    absorb(s);
    return true;
}

void relay_seqs_through(relay_seqs *s, int64_t seq)
{
    if (seq > s->through)
        s->through = seq;
    absorb(s);
}

int64_t relay_seqs_gap_end(const relay_seqs *s)
{
    return s->n ? s->above[0] : 0;
}

void relay_seqs_free(relay_seqs *s)
{
    free(s->above);
    memset(s, 0, sizeof *s);
}
