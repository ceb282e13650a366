/*
 * Recent message ids of one room, to drop fast-path duplicates: a ring of
 * the last `cap` ids plus an open-addressed index into it.
 */
#ifndef RELAY_DEDUP_H
#define RELAY_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

/* Bytes of a message id once decoded from its 32 hex characters (MR_MSG_ID_LEN). */
#define RELAY_DEDUP_ID_BYTES 16

typedef struct relay_dedup {
    uint8_t (*ids)[RELAY_DEDUP_ID_BYTES];
    uint32_t *index; /* slot+1 into ids, 0 = empty; twice the ring size */
    uint32_t cap, next, count;
} relay_dedup;

/**
 * Remember `msg_id` (MR_MSG_ID_LEN lowercase or uppercase hex characters);
 * returns true when it is among the last `cap` ids remembered. `cap` must be
 * a power of two (relay_rooms_init rounds the configured window) and the same
 * on every call for one relay_dedup, which starts zeroed.
 */
bool relay_dedup_seen(relay_dedup *d, uint32_t cap, const char *msg_id);
/** Release the ring; `d` may be reused (zeroed) afterwards. */
void relay_dedup_free(relay_dedup *d);

#endif
