/*
 * The DNS routing policy, shared by the health agent (which writes the
 * records) and meridian-regions/terraform (which render the same answers
 * ahead of time): which region answers a client, and with which relay
 * addresses. It only reads a loaded regions file (mr_regions.h).
 */
#ifndef MR_REGIONS_ROUTE_H
#define MR_REGIONS_ROUTE_H

#include "mr_regions.h"

#include <stdbool.h>
#include <stddef.h>

/** mr_regions_route() result when no region is healthy: answer every relay. */
#define MR_REGIONS_FAIL_OPEN (-1)

/** Index of the region whose CIDRs contain the IP literal `addr` (longest prefix), or -1. */
int mr_regions_region_for_addr(const mr_regions *r, const char *addr);

/** A region is healthy when at least min_healthy_relays of its relays are up. */
bool mr_regions_region_healthy(const mr_region *g, size_t relays_up);

/**
 * The DNS routing policy. For clients in region `geo`'s geography, the
 * region whose relays DNS should answer: the first healthy region in the
 * order [geo, geo.failover...]. `healthy` has n_regions entries in file
 * order. Returns that region's index, or MR_REGIONS_FAIL_OPEN when none of
 * them is healthy (then the answer is every relay of every region: a client
 * that reaches a half-working relay is better served than one that resolves
 * nothing).
 */
int mr_regions_route(const mr_regions *r, size_t geo, const bool *healthy);

/**
 * The addresses DNS should answer for region `geo`'s geography, per
 * mr_regions_route(). When `relay_up` is not NULL (n_relays_total entries,
 * relays numbered in file order across regions), only the chosen region's
 * relays that are up are answered; if none of them is up, all of its relays
 * are. Fills up to `max` pointers into `out` (owned by `r`) and returns the
 * number of addresses in the full answer, which may exceed `max`.
 */
size_t mr_regions_answer(const mr_regions *r, size_t geo, const bool *healthy, const bool *relay_up,
                         const char **out, size_t max);

#endif
