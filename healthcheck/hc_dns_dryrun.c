/*
 * Dry-run provider: logs the plan it would write and reports success on the
 * next loop turn, so the agent's flow (decide, write, verify) is exercised
 * without touching any DNS.
 */
#include "hc_dns.h"
#include "mr_alloc.h"
#include "mr_log.h"

#include <event2/event.h>
#include <stdlib.h>

typedef struct dryrun_done {
    hc_dns_done_cb cb;
    void *ud;
} dryrun_done;

static void later(evutil_socket_t fd, short what, void *arg)
{
    dryrun_done *d = arg;
    d->cb(0, NULL, d->ud);
    free(d);
}

static int dryrun_write(hc_dns_provider *p, const hc_dns_plan *plan, const hc_dns_fence *fence,
                        hc_dns_done_cb cb, void *ud, char *err, size_t errlen)
{
    mr_log_info("dry-run: would set %s (TTL %d) to: %s; region names: %s (lease term %llu)",
                p->regions->ws_fqdn, p->regions->ttl, plan->text, plan->own_text,
                fence ? (unsigned long long)fence->term : 0ULL);
    dryrun_done *d = mr_calloc(1, sizeof *d);
    d->cb = cb;
    d->ud = ud;
    struct timeval zero = {0, 0};
    event_base_once(p->base, -1, EV_TIMEOUT, later, d, &zero);
    return 0;
}

static void dryrun_destroy(hc_dns_provider *p)
{
    free(p);
}

static const hc_dns_ops dryrun_ops = {"dry-run", dryrun_write, dryrun_destroy};

hc_dns_provider *hc_dns_dryrun_new(struct event_base *base, const mr_regions *r, mr_cfg *c,
                                   json_t *conf)
{
    static const char *const keys[] = {"type", NULL};
    mr_cfg_check_keys(c, conf, "dns", keys);
    if (mr_cfg_failed(c))
        return NULL;
    hc_dns_provider *p = mr_calloc(1, sizeof *p);
    *p = (hc_dns_provider){&dryrun_ops, base, r, 0, true};
    return p;
}
