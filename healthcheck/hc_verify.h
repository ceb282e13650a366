/*
 * Check that an authoritative DNS server serves an expected answer, asking
 * it with c-ares from a chosen source address (so that a geography-aware
 * server answers as it would for clients of that geography), over and over
 * until it does or a deadline passes.
 */
#ifndef HC_VERIFY_H
#define HC_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct hc_verify hc_verify;

/**
 * Called once: ok when the server served exactly `expected`; `seconds` is the
 * time from `t0_us` (monotonic, usually the decision) to that answer.
 * `detail` describes the last answer or error.
 */
typedef void (*hc_verify_cb)(bool ok, double seconds, const char *detail, void *ud);

/** Once per process, before any hc_verify_start. Returns 0 or -1. */
int hc_verify_global_init(void);

/**
 * Start asking `server_ip`:`port` for A records of `name` from `source_ip`
 * (an IPv4 literal, or NULL for the default). `expected` need not be sorted.
 * Returns NULL with `err` filled when it cannot start; then `cb` is never
 * called.
 */
hc_verify *hc_verify_start(struct event_base *base, const char *server_ip, int port,
                           const char *source_ip, const char *name, char *const *expected,
                           size_t n_expected, int64_t t0_us, int timeout_ms, hc_verify_cb cb,
                           void *ud, char *err, size_t errlen);
/** Stop without calling the callback. */
void hc_verify_cancel(hc_verify *v);

/**
 * One blocking-free query helper for tests and the status page: the sorted,
 * comma-separated answer is passed to `cb` as detail with ok = true when an
 * answer arrived (empty set included).
 */
hc_verify *hc_verify_query(struct event_base *base, const char *server_ip, int port,
                           const char *source_ip, const char *name, int timeout_ms, hc_verify_cb cb,
                           void *ud, char *err, size_t errlen);

#endif
