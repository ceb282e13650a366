/*
 * Backend hooks: the app's backend decides on a join or a publish
 * (docs/relay.md, "Backend hooks"). An HTTP POST per decision, made by
 * libcurl on a thread of this module; the answers come back to the lws
 * thread like NATS messages do (queued, then a wake-up).
 */
#ifndef RELAY_HOOK_H
#define RELAY_HOOK_H

#include "mr_proto.h"
#include "relay_config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Longest reason of a denial passed on to the client (bytes of UTF-8). */
#define RELAY_HOOK_REASON_MAX 200

typedef enum {
    RELAY_HOOK_ALLOW,      /* go on (with `data` instead of the client's, when set) */
    RELAY_HOOK_DENY,       /* the backend said no: `forbidden` with `reason` */
    RELAY_HOOK_UNAVAILABLE /* the backend failed and the rule refuses then: `unavailable` */
} relay_hook_verdict;

/** A decision, handed to the lws thread by relay_hooks_take(). */
typedef struct relay_hook_result {
    struct relay_hook_result *next;
    uint64_t id; /* the caller's id given to relay_hooks_call */
    relay_hook_verdict verdict;
    bool failed; /* the backend did not answer usefully; the rule's on_failure decided */
    char reason[RELAY_HOOK_REASON_MAX + 1]; /* DENY: the backend's reason (may be "") */
    json_t *data; /* ALLOW of a publish: the backend's replacement data, or NULL (owned) */
} relay_hook_result;

typedef struct relay_hooks relay_hooks;
/** Called on the hook thread when results are waiting (wake the lws loop). */
typedef void (*relay_hooks_wake_cb)(void *ud);

/**
 * Start the hook thread when `cfg` has rules; returns NULL when it has none
 * (every relay_hooks_* function accepts NULL: no hook applies) or when
 * libcurl cannot start (logged; the relay then refuses to start).
 */
relay_hooks *relay_hooks_new(const relay_config *cfg, relay_hooks_wake_cb wake, void *ud,
                             bool *failed);
/** The rule for `event` (RELAY_HOOK_ON_*) in `room`, or NULL when no hook applies. */
const relay_hook_rule *relay_hooks_match(relay_hooks *h, int event, const char *room,
                                         size_t room_len);
/**
 * Ask the backend of `rule` about `event` (RELAY_HOOK_ON_*; lws thread).
 * `body` is the JSON request (taken over; NULL fails the hook); the result
 * arrives with `id`, always exactly once unless the relay stops.
 */
void relay_hooks_call(relay_hooks *h, const relay_hook_rule *rule, int event, uint64_t id,
                      char *body);
/** Every result finished since the last call, oldest first (lws thread). */
relay_hook_result *relay_hooks_take(relay_hooks *h);
void relay_hook_result_free(relay_hook_result *res);

/**
 * A publish decision remembered by msg_id (lws thread), so that a retried
 * mid gets the answer its first attempt got without asking again. Returns
 * true and fills `out` (data is a new reference) when one is known.
 */
bool relay_hooks_cached(relay_hooks *h, const char *msg_id, relay_hook_result *out);
/** Remember the decision `res` for `msg_id` (data gets a reference). */
void relay_hooks_remember(relay_hooks *h, const char *msg_id, const relay_hook_result *res);

/** Stop the thread (requests in flight are dropped) and free everything. */
void relay_hooks_free(relay_hooks *h);

#endif
