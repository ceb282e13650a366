/*
 * libFuzzer target: the health agents' NATS messages (healthcheck/hc_wire.c).
 * Every message another agent sends is untrusted input: the lease and
 * observation parsers must reject garbage without crashing or reading out
 * of bounds, and what they accept must encode and parse back to the same.
 */
#include "fuzz_target.h"
#include "hc_wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hc_lease_msg m;
    if (hc_wire_lease_parse((const char *)data, size, &m) == 0) {
        mr_buf b = MR_BUF_INIT;
        hc_wire_lease_encode(&m, &b);
        hc_lease_msg m2;
        if (hc_wire_lease_parse(b.data, b.len, &m2) != 0 || m2.type != m.type ||
            m2.term != m.term || strcmp(m2.from, m.from) != 0)
            abort();
        mr_buf_free(&b);
    }
    hc_obs *o = malloc(sizeof *o);
    if (hc_wire_obs_parse((const char *)data, size, o) == 0) {
        mr_buf b = MR_BUF_INIT;
        hc_wire_obs_encode(o, &b);
        hc_obs *o2 = malloc(sizeof *o2);
        if (hc_wire_obs_parse(b.data, b.len, o2) != 0 || strcmp(o2->agent, o->agent) != 0 ||
            strcmp(o2->votes, o->votes) != 0 || o2->n_drains != o->n_drains)
            abort();
        free(o2);
        mr_buf_free(&b);
    }
    free(o);
    return 0;
}
