/*
 * What a room's members already got, in two small structures:
 *
 *  - relay_dedup: message ids in the order they were added, each with the
 *    time it was added and a value of the caller's, indexed for lookup. It grows as needed up to a
 * cap, forgets ids older than a window when asked, and lets any id be removed (a commit came for an
 * id that was waiting for it).
 *  - relay_seqs: the seqs delivered: every seq up to `through`, and the few
 *    delivered beyond it out of order.
 *
 * relay_deliver.c uses one relay_dedup for the ids delivered on the fast
 * path that wait for their commit, another for the ids committed lately,
 * and a relay_seqs per room (docs/relay.md, "What members already got").
 */
#ifndef RELAY_DEDUP_H
#define RELAY_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

/* Bytes of a message id once decoded from its 32 hex characters (MR_MSG_ID_LEN). */
#define RELAY_DEDUP_ID_BYTES 16
/* Bytes one slot of the ring costs: the id, its time and value, two index slots. */
#define RELAY_DEDUP_SLOT_BYTES (RELAY_DEDUP_ID_BYTES + 8 + 8 + 2 * 4)
/* Most seqs remembered beyond `through`; a gap older than that is given up. */
#define RELAY_SEQS_ABOVE_MAX 4096

typedef struct relay_dedup {
    uint8_t (*ids)[RELAY_DEDUP_ID_BYTES];
    int64_t *t_ms;   /* when each slot's id was added; INT64_MIN: removed (a hole) */
    int64_t *val;    /* the caller's value for each slot */
    uint32_t *index; /* slot+1 into ids, 0 = empty; twice the ring's size */
    uint32_t cap;    /* ring slots, a power of two (0 until the first add) */
    uint32_t head;   /* the oldest slot */
    uint32_t len;    /* slots in use from head, holes included */
    uint32_t count;  /* ids remembered */
} relay_dedup;

/** Decode a message id (MR_MSG_ID_LEN hex characters, either case) into its 16 bytes. */
void relay_dedup_key(const char *msg_id, uint8_t out[RELAY_DEDUP_ID_BYTES]);
/** Whether `id` is remembered. */
bool relay_dedup_has(const relay_dedup *d, const uint8_t *id);
/** Whether `id` is remembered, and its value in *val. */
bool relay_dedup_get(const relay_dedup *d, const uint8_t *id, int64_t *val);
/**
 * Remember `id` (not remembered yet) with `val`, as added at `now_ms`.
 * Returns 0, or -1 when `max` ids are remembered already: nothing changed.
 * The ring never has more slots than `max` rounded up to a power of two.
 */
int relay_dedup_add(relay_dedup *d, const uint8_t *id, int64_t now_ms, int64_t val, uint32_t max);
/** Forget `id`; returns whether it was remembered, with its value in *val (may be NULL). */
bool relay_dedup_remove(relay_dedup *d, const uint8_t *id, int64_t *val);
/** Forget the oldest id (when any). */
void relay_dedup_drop_oldest(relay_dedup *d);
/** Forget every id added before `before_ms`, and give memory back when few remain. */
void relay_dedup_expire(relay_dedup *d, int64_t before_ms);
/** When the oldest id remembered was added, or INT64_MAX when there is none. */
int64_t relay_dedup_oldest(const relay_dedup *d);
/** Release the memory; `d` may be reused (zeroed) afterwards. */
void relay_dedup_free(relay_dedup *d);

typedef struct relay_seqs {
    int64_t through; /* every seq <= through was delivered, or predates the room here */
    int64_t *above;  /* seqs > through + 1 delivered, ascending */
    uint32_t n, cap;
} relay_seqs;

/** Record `seq` as delivered; returns false when it was already (a repeat). */
bool relay_seqs_add(relay_seqs *s, int64_t seq);
/** Whether `seq` was delivered. */
bool relay_seqs_has(const relay_seqs *s, int64_t seq);
/** Every seq up to `seq` counts as delivered from now on (a baseline). */
void relay_seqs_through(relay_seqs *s, int64_t seq);
/** The lowest seq above `through` that was delivered, or 0 when none (no gap). */
int64_t relay_seqs_gap_end(const relay_seqs *s);
void relay_seqs_free(relay_seqs *s);

#endif
