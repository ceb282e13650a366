/*
 * The agents' messages on NATS, as bytes: the lease protocol's requests,
 * votes and releases (subject meridian.hc.lease) and each agent's
 * observation (subject meridian.hc.obs: its view of every region and relay,
 * whether it holds the lease, the last DNS write it made, its drain flags).
 *
 * Everything received is untrusted: the parsers bound every length and
 * value, reject anything malformed with -1, and never read past `len`
 * (tests/fuzz/fuzz_hc_wire.c).
 */
#ifndef HC_WIRE_H
#define HC_WIRE_H

#include "hc_lease.h"
#include "mr_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_WIRE_MAX_BYTES   16384 /* a larger message is refused unread */
#define HC_WIRE_MAX_ITEMS   256   /* regions + relays (= HC_QUORUM_MAX_ITEMS) */
#define HC_WIRE_MAX_REGIONS 256
#define HC_WIRE_ID_MAX      64  /* agent ids and region names: 1..63 bytes */
#define HC_WIRE_TEXT_MAX    600 /* the text of a DNS write */

/** A region's drain flag with the version that orders concurrent changes. */
typedef struct hc_drain_flag {
    bool drained;
    uint64_t version;        /* higher wins; equal versions: the higher `by` wins */
    char by[HC_WIRE_ID_MAX]; /* the agent that set it ("" for never set) */
} hc_drain_flag;

/** True when `a` is newer than `b` (the order every agent applies). */
bool hc_drain_flag_newer(const hc_drain_flag *a, const hc_drain_flag *b);

typedef struct hc_obs {
    char agent[HC_WIRE_ID_MAX];
    char region[HC_WIRE_ID_MAX];
    int64_t ts;                        /* the sender's wall clock, ms */
    char votes[HC_WIRE_MAX_ITEMS + 1]; /* 'u', 'd' or '?' per item */
    size_t n_votes;
    bool lease;          /* the sender holds the lease */
    uint64_t term;       /* ... in this term (0 when not holding) */
    int64_t lease_since; /* ... since this wall-clock ms */
    bool has_write;
    int64_t write_ts;
    char write_text[HC_WIRE_TEXT_MAX];
    size_t n_drains; /* 0 when the sender sent none */
    hc_drain_flag drains[HC_WIRE_MAX_REGIONS];
} hc_obs;

/** Parse a lease message. Returns 0, or -1 for anything malformed. */
int hc_wire_lease_parse(const char *data, size_t len, hc_lease_msg *out);
/** Encode a lease message. */
void hc_wire_lease_encode(const hc_lease_msg *m, mr_buf *out);
/** Parse an observation. Returns 0, or -1 for anything malformed. */
int hc_wire_obs_parse(const char *data, size_t len, hc_obs *out);
/** Encode an observation (drains: n_drains entries, may be 0). */
void hc_wire_obs_encode(const hc_obs *o, mr_buf *out);

#endif
