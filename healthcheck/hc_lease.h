/*
 * The DNS-writer lease: a majority-of-agents lease with terms as fencing
 * tokens, as a pure state machine. No I/O and no clock of its own: the
 * caller feeds it the time (a clock that never goes back and keeps running
 * while the machine sleeps, CLOCK_BOOTTIME) and the messages it receives,
 * and sends the messages it returns. That makes every interleaving of
 * messages, clocks and restarts reproducible in tests
 * (tests/healthcheck/test_hc_lease.c).
 *
 * The protocol, and why at most one agent holds the lease at any moment, is
 * in docs/healthcheck.md ("Lease"). In short: a candidate asks every member
 * for a vote in term T; a member grants at most one vote per term and, with
 * it, promises not to grant any other candidate anything for `ttl` from the
 * moment it received the request; the candidate holds the lease once a
 * majority granted the same round, until (when it SENT that round's request
 * + ttl - margin), which is before any of those promises ends. Renewals are
 * new rounds in the same term. A member that restarts grants nothing for
 * one ttl (it forgot its promises); its term and vote are persisted by the
 * caller whenever `persist` is set, before the messages are sent.
 */
#ifndef HC_LEASE_H
#define HC_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_LEASE_MAX_MEMBERS 32
#define HC_LEASE_ID_MAX      64 /* agent ids: 1..63 bytes */

typedef enum hc_lease_msg_type {
    HC_LEASE_REQ = 1, /* candidate -> everyone: vote for me in `term` (round `seq`) */
    HC_LEASE_VOTE,    /* member -> candidate `to`: granted or not */
    HC_LEASE_RELEASE, /* -> everyone: I do not hold and gave `term` up; drop your promise to me */
} hc_lease_msg_type;

typedef struct hc_lease_msg {
    hc_lease_msg_type type;
    char from[HC_LEASE_ID_MAX];
    char to[HC_LEASE_ID_MAX]; /* VOTE only */
    uint64_t term;
    uint64_t seq;    /* REQ and VOTE: the round */
    bool granted;    /* VOTE */
    uint64_t seen;   /* VOTE: the highest term the member voted in */
    int64_t wait_ms; /* VOTE refused: how long the member's promise to another still runs */
} hc_lease_msg;

typedef struct hc_lease_conf {
    const char *self;
    const char *const *members; /* every agent's id, self included */
    size_t n_members;
    int64_t ttl_us;    /* a promise lasts this long from its request's receipt */
    int64_t margin_us; /* the holder's lease ends this much before ttl after sending */
    int64_t renew_us;  /* a holder starts a renewal round this long after the last one */
    int64_t round_us;  /* a round without a majority is given up after this */
} hc_lease_conf;

/** What one call asks the caller to do: persist first, then send. */
typedef struct hc_lease_out {
    bool persist; /* (term, voted_for) changed: write them durably before sending */
    size_t n;
    hc_lease_msg msg[2];
} hc_lease_out;

typedef struct hc_lease {
    char self[HC_LEASE_ID_MAX];
    char members[HC_LEASE_MAX_MEMBERS][HC_LEASE_ID_MAX];
    size_t n_members;
    int64_t ttl_us, margin_us, renew_us, round_us;

    /* Persistent: the highest term this member voted in, and for whom. */
    uint64_t term;
    char voted_for[HC_LEASE_ID_MAX];
    /* ... and what they were before this agent's open candidacy. */
    uint64_t term_before;
    char voted_before[HC_LEASE_ID_MAX];

    /* Member side. */
    int64_t quiet_until_us; /* after a start: no votes (promises were forgotten) */
    char promise_to[HC_LEASE_ID_MAX];
    int64_t promise_until_us;
    uint64_t promise_term; /* the term of the request it was made for */

    /* Candidate and holder side. */
    uint64_t max_seen; /* highest term heard of anywhere */
    bool round_open;
    uint64_t round_term, round_seq;
    int64_t round_sent_us;
    bool granted[HC_LEASE_MAX_MEMBERS];
    bool refused[HC_LEASE_MAX_MEMBERS];
    int64_t round_wait_us; /* the shortest promise that refused us this round */
    uint64_t seq;
    uint64_t held_term; /* 0: not holding (see hc_lease_held for the deadline) */
    uint64_t last_held_term;
    int64_t held_until_us;
    int64_t held_since_us;
    int64_t next_round_us;
} hc_lease;

/**
 * Start (or restart) with the persisted `term` and `voted_for` (0 and "" on
 * first start). Returns 0, or -1 when the configuration is unusable (self
 * not among the members, an id too long, too many members, ttl <= margin).
 */
int hc_lease_init(hc_lease *l, const hc_lease_conf *c, uint64_t term, const char *voted_for,
                  int64_t now_us);
/** Time passed: expire the lease, give up a stale round, start an election or a renewal. */
void hc_lease_tick(hc_lease *l, int64_t now_us, hc_lease_out *out);
/** A message from another agent (messages from self or from non-members are ignored). */
void hc_lease_receive(hc_lease *l, const hc_lease_msg *m, int64_t now_us, hc_lease_out *out);
/** Stop holding at once and tell the members (on shutdown, after the last write ended). */
void hc_lease_release(hc_lease *l, int64_t now_us, hc_lease_out *out);

/** True while this agent holds the lease. */
bool hc_lease_held(const hc_lease *l, int64_t now_us);
/** Microseconds of lease left (0 when not holding). */
int64_t hc_lease_left_us(const hc_lease *l, int64_t now_us);
/** The term held (the fencing token), 0 when not holding. */
uint64_t hc_lease_term(const hc_lease *l, int64_t now_us);
/** The member this agent promised its vote to, while the promise runs ("" otherwise). */
const char *hc_lease_promised(const hc_lease *l, int64_t now_us);
/** Members needed for a majority. */
size_t hc_lease_majority(const hc_lease *l);

#endif
