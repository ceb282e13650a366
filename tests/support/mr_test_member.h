/*
 * Test support: a room member that behaves like a real client under faults
 * and counts what the protocol promises it never sees.
 *
 * It keeps one session at a time with one of a list of relays. When a
 * session ends (its relay died, a close frame) the next call to
 * mr_test_member_pump() connects again, to the first relay of the list that
 * answers, and resumes with `since` = the highest seq up to which it has
 * every seq. Publishes not yet acknowledged are sent again, with the same
 * mid, on the next session, and after an `unavailable` error.
 *
 * Counted per member, over all its sessions:
 *  - dup_messages: a `message` frame for a msg_id already received as a
 *    message in the same session (the protocol says never);
 *  - below_since: a history message at or below the `since` the session
 *    resumed from (never);
 *  - dup_commits: a `commit` for a msg_id whose seq the session already had
 *    (never in normal operation);
 *  - again_after_resume: a message received in an earlier session and again
 *    in a later one (docs/protocol.md says when this can happen).
 */
#ifndef MR_TEST_MEMBER_H
#define MR_TEST_MEMBER_H

#include "mr_test_relay.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define MR_TEST_MEMBER_RELAYS 8

typedef struct mr_test_member {
    char user[32], room[64];
    mr_test_relay *relays[MR_TEST_MEMBER_RELAYS];
    int nrelays;
    mr_ws ws;
    bool open;
    int sessions;
    int64_t since;       /* the `since` of the current session's join, -1 without */
    json_t *session_ids; /* msg_id -> 1 message, 2 seq known, in this session */
    json_t *ever;        /* msg_id -> true: received as a message in some session */
    json_t *seqs;        /* msg_id -> seq */
    char *have;          /* have[s]: seq s seen */
    size_t have_cap;
    json_t *pending; /* mid -> data (JSON text): published, not acknowledged */
    json_t *acked;   /* mid -> msg_id */
    json_t *joined;  /* the current session's `joined` frame */
    long dup_messages, dup_commits, below_since, again_after_resume, slow_closes;
} mr_test_member;

/** Set up `m` as `user` in `room`, connecting to the `n` relays in that order of preference. */
void mr_test_member_init(mr_test_member *m, const char *user, const char *room,
                         mr_test_relay *const *relays, int n);
void mr_test_member_free(mr_test_member *m);
/**
 * Connect (again) and join, resuming after the first session; returns true
 * once joined. Tries every relay for up to `timeout_ms`.
 */
bool mr_test_member_connect(mr_test_member *m, int timeout_ms);
/**
 * Read what arrives within `timeout_ms` (at most one frame) and count it;
 * reconnects first when the session has ended. Returns true when a frame
 * was read.
 */
bool mr_test_member_pump(mr_test_member *m, int timeout_ms);
/** Publish `data` (JSON text) with `mid`, to be sent again until acknowledged. */
void mr_test_member_publish(mr_test_member *m, const char *mid, const char *data);
/**
 * Publish messages "<tag>-<i>" for i in [from, to) as `pub` (data {"i":i}),
 * reading every member's frames after each.
 */
void mr_test_members_publish(mr_test_member *ms, int n, mr_test_member *pub, const char *tag,
                             int from, int to);
/** The highest seq s such that every seq 1..s was seen. */
int64_t mr_test_member_contiguous(const mr_test_member *m);
/** Whether the member has received msg_id as a message and knows its seq. */
bool mr_test_member_has(const mr_test_member *m, const char *msg_id);
/**
 * Pump every member (reconnecting those whose session ended) until each has
 * received every message any of them had acknowledged, with its seq, and no
 * publish waits for its ack; then `quiet_ms` more to catch late repeats.
 * Aborts the test after `timeout_ms`.
 */
void mr_test_members_settle(mr_test_member *ms, int n, int timeout_ms, int quiet_ms);
/** Print the member's counts on one line, prefixed by `what`. */
void mr_test_member_report(const mr_test_member *m, const char *what);

#endif
