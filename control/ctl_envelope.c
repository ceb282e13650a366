/*
 * Envelope validation for ingest. Most of the fetcher's CPU once went into
 * building a jansson tree for every stream message, so the common case is
 * decided by a scan (mr_json_scan) that builds nothing: a plainly valid
 * object whose keys have no escapes, with one unescaped string "room"
 * equal to the subject's, one plain "msg_id" and no "seq". Everything else
 * goes through jansson, which decides and explains. The fuzz target
 * tests/fuzz/fuzz_envelope.c holds the two paths to the same answers.
 */
#include "ctl_envelope.h"
#include "mr_alloc.h"
#include "mr_json_scan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT_PREFIX     "meridian.msg."
#define SUBJECT_PREFIX_LEN (sizeof SUBJECT_PREFIX - 1)

int ctl_envelope_subject_room(const char *subject, const char *region, const char **room, char *why,
                              size_t whylen)
{
    size_t rlen = strlen(region);
    if (strncmp(subject, SUBJECT_PREFIX, SUBJECT_PREFIX_LEN) != 0 ||
        strncmp(subject + SUBJECT_PREFIX_LEN, region, rlen) != 0 ||
        subject[SUBJECT_PREFIX_LEN + rlen] != '.') {
        snprintf(why, whylen, "unexpected subject");
        return -1;
    }
    const char *r = subject + SUBJECT_PREFIX_LEN + rlen + 1;
    if (!mr_room_valid(r, strlen(r))) {
        snprintf(why, whylen, "invalid room in subject");
        return -1;
    }
    *room = r;
    return 0;
}

static bool is_hex_id(const char *s, size_t n)
{
    if (n != MR_MSG_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The payload without trailing whitespace: the stored text must end with the object's '}'. */
static size_t trimmed(const char *data, size_t len)
{
    while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\n' || data[len - 1] == '\r' ||
                       data[len - 1] == '\t'))
        len--;
    return len;
}

bool ctl_envelope_parse_fast(const char *room, const char *data, size_t len, ctl_envelope *out)
{
    size_t room_len = strlen(room);
    len = trimmed(data, len);
    mr_json_object o;
    if (room_len > MR_ROOM_MAX || !mr_json_scan_object(data, len, &o))
        return false;
    for (size_t i = 0; i < o.count; i++)
        if (o.members[i].key_escaped)
            return false;
    bool dup = false;
    const mr_json_member *jroom = mr_json_member_get(&o, "room", &dup);
    const mr_json_member *jid = mr_json_member_get(&o, "msg_id", &dup);
    const mr_json_member *jts = mr_json_member_get(&o, "ts", &dup);
    const mr_json_member *jseq = mr_json_member_get(&o, "seq", &dup);
    if (dup || jseq || !jroom || !jid || jroom->type != MR_JSON_STRING || jroom->value_escaped ||
        jroom->value_len != room_len || memcmp(jroom->value, room, room_len) != 0 ||
        jid->type != MR_JSON_STRING || jid->value_escaped || !is_hex_id(jid->value, jid->value_len))
        return false;
    memcpy(out->room, room, room_len + 1);
    memcpy(out->msg_id, jid->value, MR_MSG_ID_LEN);
    out->msg_id[MR_MSG_ID_LEN] = '\0';
    out->ts_ms = jts && jts->type == MR_JSON_INTEGER ? strtoll(jts->value, NULL, 10) : 0;
    out->env = mr_strndup(data, len); /* an object, so it ends with '}' */
    return true;
}

int ctl_envelope_parse_full(const char *room, const char *data, size_t len, ctl_envelope *out,
                            char *why, size_t whylen)
{
    size_t room_len = strlen(room);
    len = trimmed(data, len);
    json_error_t jerr;
    json_t *o = json_loadb(data, len, 0, &jerr);
    int rc = -1;
    if (!o) {
        snprintf(why, whylen, "payload is not valid JSON: %s (byte %d)", jerr.text, jerr.position);
        goto out;
    }
    if (!json_is_object(o)) {
        snprintf(why, whylen, "payload is not a JSON object");
        goto out;
    }
    json_t *jroom = json_object_get(o, "room");
    json_t *jid = json_object_get(o, "msg_id");
    json_t *jts = json_object_get(o, "ts");
    if (room_len > MR_ROOM_MAX || !json_is_string(jroom) || json_string_length(jroom) != room_len ||
        memcmp(json_string_value(jroom), room, room_len) != 0) {
        snprintf(why, whylen, "\"room\" does not match the subject");
        goto out;
    }
    if (!json_is_string(jid) || !is_hex_id(json_string_value(jid), json_string_length(jid))) {
        snprintf(why, whylen, "\"msg_id\" must be 32 lower-case hex digits");
        goto out;
    }
    char *env;
    if (!json_object_get(o, "seq") && memchr(data, '\0', len) == NULL) {
        env = mr_strndup(data, len); /* an object, so it ends with '}' */
    } else {
        json_object_del(o, "seq");
        env = json_dumps(o, JSON_COMPACT);
        if (!env) {
            snprintf(why, whylen, "cannot serialise");
            goto out;
        }
    }
    memcpy(out->room, room, room_len + 1);
    memcpy(out->msg_id, json_string_value(jid), MR_MSG_ID_LEN + 1);
    out->ts_ms = json_is_integer(jts) ? json_integer_value(jts) : 0;
    out->env = env;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int ctl_envelope_parse(const char *room, const char *data, size_t len, ctl_envelope *out, char *why,
                       size_t whylen)
{
    if (ctl_envelope_parse_fast(room, data, len, out))
        return 0;
    return ctl_envelope_parse_full(room, data, len, out, why, whylen);
}

void ctl_envelope_free(ctl_envelope *e)
{
    free(e->env);
    e->env = NULL;
}
