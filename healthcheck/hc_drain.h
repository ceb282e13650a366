/*
 * Planned drain. An operator flags a region through any agent; a drained
 * region counts as unhealthy in the plan, so DNS moves first. Once the
 * writer has seen the new answer served, it asks each of the region's
 * relays to move its clients towards the fallback region
 * (POST <admin_url>/v1/drain), retrying until every relay accepted; after
 * undrain it takes them back into service (POST <admin_url>/v1/undrain).
 */
#ifndef HC_DRAIN_H
#define HC_DRAIN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hc_agent hc_agent;

/**
 * Set a region's drain flag for every agent; returns 0, or -1 with err
 * ("unknown region ..." when the region is not in the regions file).
 */
int hc_drain_set(hc_agent *a, const char *region, bool drained, char *err, size_t errlen);
/** The writer's side: notify the relays of drained (undrained) regions (called every tick). */
void hc_drain_step(hc_agent *a);

#endif
