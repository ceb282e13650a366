/*
 * DNS plans and the provider registry.
 *
 * A plan is computed from verdicts with the shared policy in mr_regions
 * (first healthy region in each geography's failover order, fail open when
 * none is). Addresses are sorted so that two plans compare equal exactly when
 * DNS would answer the same thing: the agent writes only on a change.
 */
#include "hc_dns.h"
#include "mr_alloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void hc_dns_plan_build(hc_dns_plan *p, const mr_regions *r, const bool *healthy,
                       const bool *relay_up)
{
    memset(p, 0, sizeof *p);
    p->regions = r;
    p->n = r->n_regions;
    p->route = mr_calloc(p->n, sizeof *p->route);
    p->addrs = mr_calloc(p->n, sizeof *p->addrs);
    p->n_addrs = mr_calloc(p->n, sizeof *p->n_addrs);
    bool *all = mr_calloc(p->n ? p->n : 1, sizeof *all);
    for (size_t i = 0; i < p->n; i++)
        all[i] = true;
    const char **tmp = mr_calloc(r->n_relays_total + 1, sizeof *tmp);
    mr_buf text = MR_BUF_INIT;
    for (size_t g = 0; g < p->n; g++) {
        p->route[g] = mr_regions_route(r, g, healthy ? healthy : all);
        size_t n =
            mr_regions_answer(r, g, healthy ? healthy : all, relay_up, tmp, r->n_relays_total);
        if (n > r->n_relays_total)
            n = r->n_relays_total;
        p->addrs[g] = mr_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            p->addrs[g][i] = mr_strdup(tmp[i]);
        qsort(p->addrs[g], n, sizeof(char *), str_cmp);
        p->n_addrs[g] = n;
        mr_buf_printf(&text, "%s%s=", g ? " " : "", r->regions[g].name);
        for (size_t i = 0; i < n; i++)
            mr_buf_printf(&text, "%s%s", i ? "," : "", p->addrs[g][i]);
    }
    p->text = text.data ? text.data : mr_strdup("");

    /* Region names: a region's own relays, those up (all when none is). */
    p->own = mr_calloc(p->n ? p->n : 1, sizeof *p->own);
    p->n_own = mr_calloc(p->n ? p->n : 1, sizeof *p->n_own);
    mr_buf own = MR_BUF_INIT;
    for (size_t g = 0; g < p->n; g++) {
        const mr_region *reg = &r->regions[g];
        size_t up = 0;
        for (size_t i = 0; i < reg->n_relays; i++)
            up += !relay_up || relay_up[mr_regions_relay_index(r, &reg->relays[i])];
        p->own[g] = mr_calloc(reg->n_relays + 1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; i < reg->n_relays; i++)
            if (up == 0 || !relay_up || relay_up[mr_regions_relay_index(r, &reg->relays[i])])
                p->own[g][n++] = mr_strdup(reg->relays[i].address);
        qsort(p->own[g], n, sizeof(char *), str_cmp);
        p->n_own[g] = n;
        mr_buf_printf(&own, "%s%s=", g ? " " : "", reg->fqdn);
        for (size_t i = 0; i < n; i++)
            mr_buf_printf(&own, "%s%s", i ? "," : "", p->own[g][i]);
    }
    p->own_text = own.data ? own.data : mr_strdup("");
    free(tmp);
    free(all);
}

void hc_dns_plan_free(hc_dns_plan *p)
{
    for (size_t g = 0; g < p->n; g++) {
        for (size_t i = 0; i < p->n_addrs[g]; i++)
            free(p->addrs[g][i]);
        free(p->addrs[g]);
    }
    free(p->addrs);
    free(p->n_addrs);
    for (size_t g = 0; p->own && g < p->n; g++) {
        for (size_t i = 0; i < p->n_own[g]; i++)
            free(p->own[g][i]);
        free(p->own[g]);
    }
    free(p->own);
    free(p->n_own);
    free(p->own_text);
    free(p->route);
    free(p->text);
    memset(p, 0, sizeof *p);
}

bool hc_dns_plan_equal(const hc_dns_plan *a, const hc_dns_plan *b)
{
    return a->text && b->text && strcmp(a->text, b->text) == 0 && a->own_text && b->own_text &&
           strcmp(a->own_text, b->own_text) == 0;
}

bool hc_dns_plan_answers(const hc_dns_plan *p, const char *addr)
{
    for (size_t g = 0; g < p->n; g++)
        for (size_t i = 0; i < p->n_addrs[g]; i++)
            if (strcmp(p->addrs[g][i], addr) == 0)
                return true;
    return false;
}

bool hc_dns_plan_drops(const hc_dns_plan *from, const hc_dns_plan *to)
{
    for (size_t g = 0; g < from->n; g++)
        for (size_t i = 0; i < from->n_addrs[g]; i++)
            if (!hc_dns_plan_answers(to, from->addrs[g][i]))
                return true;
    return false;
}

void hc_dns_plan_copy(hc_dns_plan *dst, const hc_dns_plan *src)
{
    memset(dst, 0, sizeof *dst);
    dst->regions = src->regions;
    dst->n = src->n;
    dst->route = mr_calloc(src->n ? src->n : 1, sizeof *dst->route);
    dst->addrs = mr_calloc(src->n ? src->n : 1, sizeof *dst->addrs);
    dst->n_addrs = mr_calloc(src->n ? src->n : 1, sizeof *dst->n_addrs);
    for (size_t g = 0; g < src->n; g++) {
        dst->route[g] = src->route[g];
        dst->n_addrs[g] = src->n_addrs[g];
        dst->addrs[g] = mr_calloc(src->n_addrs[g] + 1, sizeof(char *));
        for (size_t i = 0; i < src->n_addrs[g]; i++)
            dst->addrs[g][i] = mr_strdup(src->addrs[g][i]);
    }
    dst->text = mr_strdup(src->text ? src->text : "");
    dst->own = mr_calloc(src->n ? src->n : 1, sizeof *dst->own);
    dst->n_own = mr_calloc(src->n ? src->n : 1, sizeof *dst->n_own);
    for (size_t g = 0; g < src->n; g++) {
        dst->n_own[g] = src->n_own[g];
        dst->own[g] = mr_calloc(src->n_own[g] + 1, sizeof(char *));
        for (size_t i = 0; i < src->n_own[g]; i++)
            dst->own[g][i] = mr_strdup(src->own[g][i]);
    }
    dst->own_text = mr_strdup(src->own_text ? src->own_text : "");
}

void hc_dns_plan_json(const hc_dns_plan *p, mr_buf *out)
{
    mr_buf_putc(out, '{');
    for (size_t g = 0; g < p->n; g++) {
        const char *name = p->regions->regions[g].name;
        mr_buf_printf(out, "%s", g ? "," : "");
        mr_buf_json_str(out, name, strlen(name));
        mr_buf_printf(out, ":{\"region\":");
        if (p->route[g] == MR_REGIONS_FAIL_OPEN) {
            mr_buf_puts(out, "null");
        } else {
            const char *rn = p->regions->regions[p->route[g]].name;
            mr_buf_json_str(out, rn, strlen(rn));
        }
        mr_buf_puts(out, ",\"addrs\":[");
        for (size_t i = 0; i < p->n_addrs[g]; i++) {
            mr_buf_printf(out, "%s", i ? "," : "");
            mr_buf_json_str(out, p->addrs[g][i], strlen(p->addrs[g][i]));
        }
        mr_buf_puts(out, "]}");
    }
    mr_buf_putc(out, '}');
}

hc_dns_provider *hc_dns_new(struct event_base *base, const mr_regions *r, mr_cfg *c, json_t *conf)
{
    const char *type = mr_cfg_str(c, conf, "dns", "type", "dry-run");
    if (strcmp(type, "powerdns") == 0)
        return hc_dns_pdns_new(base, r, c, conf);
    if (strcmp(type, "route53") == 0)
        return hc_dns_route53_new(base, r, c, conf);
    if (strcmp(type, "dry-run") == 0)
        return hc_dns_dryrun_new(base, r, c, conf);
    mr_cfg_error(c, "dns.type", "must be \"powerdns\", \"route53\" or \"dry-run\", not \"%s\"",
                 type);
    return NULL;
}

void hc_dns_free(hc_dns_provider *p)
{
    if (p)
        p->ops->destroy(p);
}

void hc_dns_fence_name(const mr_regions *r, char *out, size_t n)
{
    snprintf(out, n, "%s.%s", HC_DNS_FENCE_LABEL, r->zone);
}

void hc_dns_fence_txt(const hc_dns_fence *f, char *out, size_t n)
{
    /* The holder is for people reading the zone; it is kept to characters
     * that need no quoting in any provider's format. */
    char h[64];
    size_t k = 0;
    for (const char *c = f->holder ? f->holder : ""; *c && k + 1 < sizeof h; c++)
        h[k++] = isalnum((unsigned char)*c) || *c == '-' || *c == '.' ? *c : '_';
    h[k] = '\0';
    snprintf(out, n, "\"term=%llu holder=%s\"", (unsigned long long)f->term, h);
}

uint64_t hc_dns_fence_term(const char *txt)
{
    const char *t = txt ? strstr(txt, "term=") : NULL;
    if (!t)
        return 0;
    return strtoull(t + 5, NULL, 10);
}
