/*
 * DNS routing policy over a loaded regions file: geography by client
 * address (longest CIDR prefix), region health, failover order, and the
 * addresses of an answer. Everything here is a pure function of the file
 * and the health the caller passes in, so the health agent and the
 * renderers compute the same answers.
 */
#include "mr_regions_route.h"

int mr_regions_region_for_addr(const mr_regions *r, const char *addr)
{
    uint8_t b[16];
    int fam = mr_regions_parse_ip(addr, b);
    if (!fam)
        return -1;
    int best = -1, best_prefix = -1;
    for (size_t i = 0; i < r->n_regions; i++)
        for (size_t k = 0; k < r->regions[i].n_cidrs; k++) {
            const mr_cidr *c = &r->regions[i].cidrs[k];
            if (mr_regions_cidr_contains(c, fam, b, fam == 4 ? 32 : 128) &&
                c->prefix > best_prefix) {
                best = (int)i;
                best_prefix = c->prefix;
            }
        }
    return best;
}

bool mr_regions_region_healthy(const mr_region *g, size_t relays_up)
{
    return relays_up >= (size_t)g->min_healthy_relays;
}

int mr_regions_route(const mr_regions *r, size_t geo, const bool *healthy)
{
    if (geo >= r->n_regions)
        return MR_REGIONS_FAIL_OPEN;
    const mr_region *g = &r->regions[geo];
    if (healthy[geo])
        return (int)geo;
    for (size_t k = 0; k < g->n_failover; k++)
        if (healthy[g->failover[k]])
            return (int)g->failover[k];
    return MR_REGIONS_FAIL_OPEN;
}

size_t mr_regions_answer(const mr_regions *r, size_t geo, const bool *healthy, const bool *relay_up,
                         const char **out, size_t max)
{
    int x = mr_regions_route(r, geo, healthy);
    size_t n = 0;
    if (x == MR_REGIONS_FAIL_OPEN) {
        /* Every relay, in file order across regions. */
        for (size_t i = 0; i < r->n_regions; i++)
            for (size_t k = 0; k < r->regions[i].n_relays; k++, n++)
                if (n < max)
                    out[n] = r->regions[i].relays[k].address;
        return n;
    }
    const mr_region *g = &r->regions[x];
    size_t base = mr_regions_relay_index(r, g->relays);
    bool any_up = false;
    for (size_t i = 0; relay_up && i < g->n_relays; i++)
        any_up |= relay_up[base + i];
    for (size_t i = 0; i < g->n_relays; i++) {
        if (any_up && !relay_up[base + i])
            continue;
        if (n < max)
            out[n] = g->relays[i].address;
        n++;
    }
    return n;
}
