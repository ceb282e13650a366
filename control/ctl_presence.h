/*
 * Presence for webhooks (docs/control.md, "Webhooks"): the relays' presence
 * deltas and heartbeats, read from NATS, validated, and applied to
 * PostgreSQL, where a user's first session in a room becomes a
 * presence.join event and their last one a presence.leave (migration 0005).
 */
#ifndef CTL_PRESENCE_H
#define CTL_PRESENCE_H

#include "ctl_config.h"
#include "ctl_presence_parse.h"

#include <nats/nats.h>

typedef struct ctl_presence ctl_presence;

/** Register the presence metrics (once, at start). */
void ctl_presence_metrics_register(void);
/**
 * Subscribe to presence when webhook.url is set and webhook.events names
 * "presence"; NULL otherwise (or when the subscriptions fail: logged).
 * `cfg` and `nc` must outlive it.
 */
ctl_presence *ctl_presence_start(const ctl_config *cfg, natsConnection *nc);
/** Unsubscribe and stop; what is queued and not yet applied is dropped. */
void ctl_presence_stop(ctl_presence *p);

#endif
