/*
 * Encoding and strict parsing of the agents' messages. JSON (jansson) keeps
 * them readable with `nats sub 'meridian.hc.>'`; every field is checked for
 * type, range and length before it is copied into a fixed-size struct.
 */
#include "hc_wire.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Integers up to 2^53: what every JSON reader represents exactly. */
#define MAX_SAFE_INT 9007199254740991LL

bool hc_drain_flag_newer(const hc_drain_flag *a, const hc_drain_flag *b)
{
    if (a->version != b->version)
        return a->version > b->version;
    return strcmp(a->by, b->by) > 0;
}

/* A printable id of 1..HC_WIRE_ID_MAX-1 bytes, copied into `out`. */
static int get_id(json_t *o, const char *key, char *out, bool required)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        out[0] = '\0';
        return required ? -1 : 0;
    }
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n >= HC_WIRE_ID_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return -1;
    memcpy(out, s, n + 1);
    return 0;
}

/* A non-negative integer up to 2^53; absent gives `dflt` unless required. */
static int get_uint(json_t *o, const char *key, uint64_t *out, bool required, uint64_t dflt)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = dflt;
        return required ? -1 : 0;
    }
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > MAX_SAFE_INT)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

static json_t *load(const char *data, size_t len)
{
    if (!data || len == 0 || len > HC_WIRE_MAX_BYTES)
        return NULL;
    json_error_t e;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &e);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int hc_wire_lease_parse(const char *data, size_t len, hc_lease_msg *out)
{
    memset(out, 0, sizeof *out);
    json_t *o = load(data, len);
    if (!o)
        return -1;
    int rc = -1;
    const char *t = json_string_value(json_object_get(o, "t"));
    uint64_t wait = 0;
    if (!t)
        goto done;
    if (strcmp(t, "req") == 0)
        out->type = HC_LEASE_REQ;
    else if (strcmp(t, "vote") == 0)
        out->type = HC_LEASE_VOTE;
    else if (strcmp(t, "release") == 0)
        out->type = HC_LEASE_RELEASE;
    else
        goto done;
    if (get_id(o, "from", out->from, true) != 0 || get_uint(o, "term", &out->term, true, 0) != 0 ||
        out->term == 0)
        goto done;
    if (out->type != HC_LEASE_RELEASE && get_uint(o, "seq", &out->seq, true, 0) != 0)
        goto done;
    if (out->type == HC_LEASE_VOTE) {
        json_t *g = json_object_get(o, "granted");
        if (!json_is_boolean(g) || get_id(o, "to", out->to, true) != 0 ||
            get_uint(o, "seen", &out->seen, true, 0) != 0 ||
            get_uint(o, "wait_ms", &wait, false, 0) != 0 || wait > 3600 * 1000)
            goto done;
        out->granted = json_is_true(g);
        out->wait_ms = (int64_t)wait;
    }
    rc = 0;
done:
    json_decref(o);
    return rc;
}

void hc_wire_lease_encode(const hc_lease_msg *m, mr_buf *b)
{
    static const char *const names[] = {"", "req", "vote", "release"};
    mr_buf_printf(b, "{\"t\":\"%s\",\"from\":", names[m->type]);
    mr_buf_json_str(b, m->from, strlen(m->from));
    mr_buf_printf(b, ",\"term\":%llu", (unsigned long long)m->term);
    if (m->type != HC_LEASE_RELEASE)
        mr_buf_printf(b, ",\"seq\":%llu", (unsigned long long)m->seq);
    if (m->type == HC_LEASE_VOTE) {
        mr_buf_puts(b, ",\"to\":");
        mr_buf_json_str(b, m->to, strlen(m->to));
        mr_buf_printf(b, ",\"granted\":%s,\"seen\":%llu,\"wait_ms\":%lld",
                      m->granted ? "true" : "false", (unsigned long long)m->seen,
                      (long long)m->wait_ms);
    }
    mr_buf_putc(b, '}');
}

static int parse_drains(json_t *arr, hc_obs *out)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > HC_WIRE_MAX_REGIONS)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        hc_drain_flag *f = &out->drains[i];
        json_t *d = json_array_get(e, 0), *v = json_array_get(e, 1), *by = json_array_get(e, 2);
        if (!json_is_array(e) || json_array_size(e) != 3 || !json_is_integer(d) ||
            !json_is_integer(v) || !json_is_string(by))
            return -1;
        json_int_t dv = json_integer_value(d), vv = json_integer_value(v);
        size_t n = json_string_length(by);
        if ((dv != 0 && dv != 1) || vv < 0 || vv > MAX_SAFE_INT || n >= HC_WIRE_ID_MAX)
            return -1;
        f->drained = dv == 1;
        f->version = (uint64_t)vv;
        memcpy(f->by, json_string_value(by), n + 1);
        if (strlen(f->by) != n)
            return -1; /* an embedded NUL */
    }
    out->n_drains = json_array_size(arr);
    return 0;
}

int hc_wire_obs_parse(const char *data, size_t len, hc_obs *out)
{
    memset(out, 0, sizeof *out);
    json_t *o = load(data, len);
    if (!o)
        return -1;
    int rc = -1;
    uint64_t ts = 0, since = 0;
    json_t *votes = json_object_get(o, "votes");
    json_t *lease = json_object_get(o, "lease");
    if (get_id(o, "agent", out->agent, true) != 0 || get_id(o, "region", out->region, false) != 0 ||
        get_uint(o, "ts", &ts, false, 0) != 0 || !json_is_string(votes) ||
        (lease && !json_is_boolean(lease)) || get_uint(o, "term", &out->term, false, 0) != 0 ||
        get_uint(o, "since", &since, false, 0) != 0)
        goto done;
    out->ts = (int64_t)ts;
    out->lease = json_is_true(lease);
    out->lease_since = (int64_t)since;
    size_t nv = json_string_length(votes);
    const char *vs = json_string_value(votes);
    if (nv > HC_WIRE_MAX_ITEMS)
        goto done;
    for (size_t i = 0; i < nv; i++)
        if (vs[i] != 'u' && vs[i] != 'd' && vs[i] != '?')
            goto done;
    memcpy(out->votes, vs, nv + 1);
    out->n_votes = nv;
    json_t *w = json_object_get(o, "write");
    if (w) {
        uint64_t wts = 0;
        json_t *text = json_object_get(w, "text");
        if (!json_is_object(w) || get_uint(w, "ts", &wts, true, 0) != 0 || !json_is_string(text) ||
            json_string_length(text) >= HC_WIRE_TEXT_MAX)
            goto done;
        out->has_write = true;
        out->write_ts = (int64_t)wts;
        memcpy(out->write_text, json_string_value(text), json_string_length(text) + 1);
    }
    if (parse_drains(json_object_get(o, "drains"), out) != 0)
        goto done;
    rc = 0;
done:
    json_decref(o);
    return rc;
}

void hc_wire_obs_encode(const hc_obs *o, mr_buf *b)
{
    mr_buf_puts(b, "{\"agent\":");
    mr_buf_json_str(b, o->agent, strlen(o->agent));
    if (o->region[0]) { /* optional, and never empty on the wire */
        mr_buf_puts(b, ",\"region\":");
        mr_buf_json_str(b, o->region, strlen(o->region));
    }
    mr_buf_printf(b, ",\"lease\":%s,\"ts\":%lld,\"votes\":\"%s\"", o->lease ? "true" : "false",
                  (long long)o->ts, o->votes);
    if (o->lease)
        mr_buf_printf(b, ",\"term\":%llu,\"since\":%lld", (unsigned long long)o->term,
                      (long long)o->lease_since);
    if (o->has_write) {
        mr_buf_printf(b, ",\"write\":{\"ts\":%lld,\"text\":", (long long)o->write_ts);
        mr_buf_json_str(b, o->write_text, strlen(o->write_text));
        mr_buf_putc(b, '}');
    }
    if (o->n_drains) {
        mr_buf_puts(b, ",\"drains\":[");
        for (size_t i = 0; i < o->n_drains; i++) {
            mr_buf_printf(b, "%s[%d,%llu,", i ? "," : "", o->drains[i].drained ? 1 : 0,
                          (unsigned long long)o->drains[i].version);
            mr_buf_json_str(b, o->drains[i].by, strlen(o->drains[i].by));
            mr_buf_putc(b, ']');
        }
        mr_buf_putc(b, ']');
    }
    mr_buf_putc(b, '}');
}
