/*
 * Webhooks for committed messages and presence changes (docs/control.md,
 * "Webhooks"): a thread
 * with its own PostgreSQL session delivers the outbox (migration 0004) to
 * webhook.url, signed, in order, at least once, retrying with backoff.
 */
#ifndef CTL_WEBHOOK_H
#define CTL_WEBHOOK_H

#include "ctl_config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ctl_webhook ctl_webhook;

/** Register the webhook metrics (once, at start). */
void ctl_webhook_metrics_register(void);
/**
 * Start the sender when webhook.url is set; NULL when it is not (or the
 * thread cannot start: logged). `cfg` must outlive the sender.
 */
ctl_webhook *ctl_webhook_start(const ctl_config *cfg);
/** Stop the sender (a request in flight is abandoned: it is sent again later). */
void ctl_webhook_stop(ctl_webhook *w);

/**
 * The Meridian-Signature header value for `body` sent at unix time `t`:
 * "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" into `out` (at least
 * 96 bytes).
 */
void ctl_webhook_sign(const unsigned char *secret, size_t secret_len, int64_t t, const char *body,
                      size_t body_len, char *out, size_t outlen);

#endif
