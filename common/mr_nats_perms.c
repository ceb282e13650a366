/*
 * The permission table (docs/architecture.md, "NATS permissions"). Room
 * names are one subject token ([A-Za-z0-9_-]), so `*` is enough wherever a
 * room appears. Three details follow from how nats-server and libnats work:
 *
 * - Replies. A relay answers another relay's presence snapshot request on
 *   that relay's inbox ("_INBOX.<random>.p.<room>", relay_nats.c), and the
 *   control plane answers history requests and acknowledges stream messages
 *   on their reply subjects. When the requester's subscription is recent,
 *   a gateway rewrites the reply subject to "_GR_.<cluster>.<server>.<reply>"
 *   (nats-server gateway.go), so each reply pattern is allowed in both forms.
 *   nats-server's allow_responses would express this without patterns, but
 *   it keeps a map entry per received message with a reply subject and
 *   rescans the map once it holds 4096, which at a relay's or the ingest's
 *   message rate is a quadratic cost; only the health agents, which receive
 *   a few messages a second, use it.
 * - JetStream API subjects name the stream, so a relay may create and read
 *   its own region's stream only, and the control plane the streams of
 *   every region and its durable consumer on them.
 * - The health agents' KV buckets are streams named KV_<bucket>: reads are
 *   direct gets or message gets, writes are publishes on $KV.<bucket>.<key>.
 */
#include "mr_nats_perms.h"
#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[MR_NATS_NROLES] = {"relay", "control", "healthcheck"};

const char *mr_nats_role_name(mr_nats_role role)
{
    return role < MR_NATS_NROLES ? role_names[role] : "?";
}

int mr_nats_role_find(const char *name)
{
    for (int i = 0; i < MR_NATS_NROLES; i++)
        if (strcmp(name, role_names[i]) == 0)
            return i;
    return -1;
}

static void add(char ***list, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add(char ***list, size_t *n, const char *fmt, ...)
{
    /* Built whole, never cut: a shortened subject would be another permission. */
    mr_buf s = MR_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    mr_buf_vprintf(&s, fmt, ap);
    va_end(ap);
    *list = mr_realloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = s.data ? s.data : mr_strdup("");
}

/* A reply subject pattern in its direct and gateway-mapped forms. */
static void add_reply(mr_nats_perms *p, const char *pattern)
{
    add(&p->pub, &p->npub, "%s", pattern);
    add(&p->pub, &p->npub, "_GR_.*.*.%s", pattern);
}

static void relay_perms(mr_nats_perms *p, const char *region)
{
    char stream[MR_STREAM_NAME_MAX];
    mr_stream_name(region, stream, sizeof stream);
    add(&p->pub, &p->npub, "meridian.msg.%s.*", region);
    add(&p->pub, &p->npub, "meridian.sig.%s.*", region);
    add(&p->pub, &p->npub, "meridian.presence.*");
    add(&p->pub, &p->npub, "meridian.relay.hb");
    add(&p->pub, &p->npub, "meridian.history.*");
    add(&p->pub, &p->npub, "$JS.API.STREAM.INFO.%s", stream);
    add(&p->pub, &p->npub, "$JS.API.STREAM.CREATE.%s", stream);
    add(&p->pub, &p->npub, "$JS.API.STREAM.UPDATE.%s", stream);
    add_reply(p, "_INBOX.*.p.*");
    add(&p->sub, &p->nsub, "meridian.msg.*.*");
    add(&p->sub, &p->nsub, "meridian.sig.*.*");
    add(&p->sub, &p->nsub, "meridian.commit.*");
    add(&p->sub, &p->nsub, "meridian.presence.*");
    add(&p->sub, &p->nsub, "meridian.relay.hb");
    add(&p->sub, &p->nsub, "_INBOX.>");
}

static void control_perms(mr_nats_perms *p, const char *region, const char *const *regions,
                          size_t nregions)
{
    add(&p->pub, &p->npub, "meridian.commit.*");
    add(&p->pub, &p->npub, "meridian.msg.%s.*", region);
    for (size_t i = 0; i < nregions; i++) {
        char s[MR_STREAM_NAME_MAX];
        mr_stream_name(regions[i], s, sizeof s);
        /* INFO only: the region's relays own the stream's configuration
         * (mr_stream.h); the control plane checks it and never changes it. */
        add(&p->pub, &p->npub, "$JS.API.STREAM.INFO.%s", s);
        add(&p->pub, &p->npub, "$JS.API.CONSUMER.INFO.%s.%s", s, MR_STREAM_CONSUMER);
        add(&p->pub, &p->npub, "$JS.API.CONSUMER.DURABLE.CREATE.%s.%s", s, MR_STREAM_CONSUMER);
        add(&p->pub, &p->npub, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", s, MR_STREAM_CONSUMER);
        char ack[MR_STREAM_NAME_MAX + 64];
        snprintf(ack, sizeof ack, "$JS.ACK.%s.%s.>", s, MR_STREAM_CONSUMER);
        add_reply(p, ack);
    }
    add_reply(p, "_INBOX.>");
    add(&p->sub, &p->nsub, "meridian.history.*");
    /* Read only: presence webhooks (control/ctl_presence.c) follow the
     * relays' deltas and heartbeats; control never publishes presence. */
    add(&p->sub, &p->nsub, "meridian.presence.*");
    add(&p->sub, &p->nsub, "meridian.relay.hb");
    add(&p->sub, &p->nsub, "_INBOX.>");
}

/* The agents' observations, lease and drain flags are all core NATS
 * messages on meridian.hc.> (healthcheck/hc_cluster.h): nothing else, no
 * JetStream, no request/reply. */
static void healthcheck_perms(mr_nats_perms *p)
{
    add(&p->pub, &p->npub, "meridian.hc.>");
    add(&p->sub, &p->nsub, "meridian.hc.>");
}

void mr_nats_perms_build(mr_nats_perms *p, mr_nats_role role, const char *region,
                         const char *const *regions, size_t nregions)
{
    memset(p, 0, sizeof *p);
    switch (role) {
    case MR_NATS_ROLE_RELAY:
        relay_perms(p, region);
        break;
    case MR_NATS_ROLE_CONTROL:
        control_perms(p, region, regions, nregions);
        break;
    case MR_NATS_ROLE_HEALTHCHECK:
    default:
        healthcheck_perms(p);
        break;
    }
}

void mr_nats_perms_free(mr_nats_perms *p)
{
    for (size_t i = 0; i < p->npub; i++)
        free(p->pub[i]);
    for (size_t i = 0; i < p->nsub; i++)
        free(p->sub[i]);
    free(p->pub);
    free(p->sub);
    memset(p, 0, sizeof *p);
}

static void put_list(mr_buf *b, const char *name, char *const *list, size_t n)
{
    mr_buf_printf(b, "        %s: {allow: [\n", name);
    for (size_t i = 0; i < n; i++) {
        mr_buf_puts(b, "          ");
        mr_buf_json_str(b, list[i], strlen(list[i]));
        mr_buf_putc(b, '\n');
    }
    mr_buf_puts(b, "        ]}\n");
}

void mr_nats_accounts_render(mr_buf *b, const char *const *regions, size_t nregions,
                             const char *const *pubs)
{
    mr_buf_puts(b, "\naccounts {\n  " MR_NATS_ACCOUNT " {\n    jetstream: enabled\n    users: [\n");
    for (size_t i = 0; i < nregions; i++) {
        for (int role = 0; role < MR_NATS_NROLES; role++) {
            mr_nats_perms p;
            mr_nats_perms_build(&p, (mr_nats_role)role, regions[i], regions, nregions);
            /* Several keys (one per line) while a key is rotated: one user each. */
            for (const char *pub = pubs[i * MR_NATS_NROLES + (size_t)role]; *pub;) {
                size_t len = strcspn(pub, "\n");
                mr_buf_printf(b, "      # %s of %s\n      {nkey: ", role_names[role], regions[i]);
                mr_buf_json_str(b, pub, len);
                mr_buf_puts(b, ", permissions: {\n");
                put_list(b, "publish", p.pub, p.npub);
                put_list(b, "subscribe", p.sub, p.nsub);
                if (p.responses)
                    mr_buf_puts(b, "        allow_responses: true\n");
                mr_buf_puts(b, "      }}\n");
                pub += len + (pub[len] == '\n');
            }
            mr_nats_perms_free(&p);
        }
    }
    mr_buf_puts(b, "    ]\n  }\n}\n");
}
