/*
 * libFuzzer target: the control plane's presence input from NATS
 * (control/ctl_presence_parse.c), which any client with publish rights may
 * send. Input: one byte choosing the parser, then the rest split at the
 * first '\n':
 *
 *   'h' <payload>                           a heartbeat on meridian.relay.hb
 *   'r' <subject>\n<reply>\n<payload>       a delta with a reply subject
 *   anything else <subject>\n<payload>      a delta
 *
 * Whatever is accepted must be what ctl_presence.c may hand PostgreSQL: a
 * valid room (the subject's), relay id and user within their limits, the
 * sessions and seq in range, and an op that is exactly "set" or "bye" as
 * jansson reads it. Whatever is rejected carries a reason.
 */
#include "fuzz_target.h"
#include "ctl_presence_parse.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The next '\n'-terminated field of the input as a C string (NULs end it early). */
static char *field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = strndup((const char *)*p, n);
    if (!s)
        abort();
    *p += n + (nl ? 1 : 0);
    return s;
}

/* A NUL-terminated string of 1..max bytes inside its buffer of `size`. */
static void check_text(const char *s, size_t size, size_t max)
{
    size_t n = strnlen(s, size);
    if (n == 0 || n == size || n > max)
        abort();
}

/* The payload's "op" as jansson reads it must be exactly `want` (or absent when want is NULL). */
static void check_op(const char *data, size_t len, const char *want)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    json_t *op = json_object_get(j, "op");
    if (!want ? op != NULL
              : !json_is_string(op) || json_string_length(op) != strlen(want) ||
                    strcmp(json_string_value(op), want) != 0)
        abort();
    json_decref(j);
}

/* The fields both parsers fill: a relay id as relays make them. */
static void check_node(const ctl_presence_item *it)
{
    check_text(it->node, sizeof it->node, CTL_PRESENCE_NODE_MAX - 1);
    if (!mr_instance_valid(it->node, strlen(it->node)))
        abort();
}

static void check_rejected(int rc, const char *why)
{
    if (rc == CTL_PRESENCE_BAD && (!why || !why[0]))
        abort();
}

static void heartbeat(const char *data, size_t len)
{
    ctl_presence_item it;
    const char *why = NULL;
    int rc = ctl_presence_parse_heartbeat(data, len, &it, &why);
    check_rejected(rc, why);
    if (rc == CTL_PRESENCE_IGNORED)
        abort(); /* heartbeats have nothing to ignore */
    if (rc != CTL_PRESENCE_OK)
        return;
    if (it.kind != CTL_PRESENCE_SEEN && it.kind != CTL_PRESENCE_BYE)
        abort();
    check_node(&it);
    if (it.room[0] || it.user[0] || it.seq || it.sessions)
        abort();
    check_op(data, len, it.kind == CTL_PRESENCE_BYE ? "bye" : NULL);
}

static void delta(const char *subject, const char *reply, const char *data, size_t len)
{
    ctl_presence_item it;
    const char *why = NULL;
    int rc = ctl_presence_parse_delta(subject, reply, data, len, &it, &why);
    check_rejected(rc, why);
    if (rc == CTL_PRESENCE_IGNORED && !(reply && reply[0]))
        abort(); /* only a snapshot request (one with a reply subject) is ignored */
    if (rc != CTL_PRESENCE_OK)
        return;
    if (it.kind != CTL_PRESENCE_SET)
        abort();
    check_text(it.room, sizeof it.room, MR_ROOM_MAX);
    size_t prefix = strlen(CTL_PRESENCE_SUBJECT_PREFIX);
    if (strncmp(subject, CTL_PRESENCE_SUBJECT_PREFIX, prefix) != 0 ||
        strcmp(subject + prefix, it.room) != 0 || !mr_room_valid(it.room, strlen(it.room)))
        abort();
    check_node(&it);
    check_text(it.user, sizeof it.user, CTL_PRESENCE_USER_MAX);
    if (it.sessions < 0 || it.sessions > CTL_PRESENCE_SESSIONS_MAX || it.seq < 1)
        abort();
    check_op(data, len, "set");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0];
    const uint8_t *p = data + 1, *end = data + size;
    char *subject = which == 'h' ? NULL : field(&p, end);
    char *reply = which == 'r' ? field(&p, end) : NULL;
    /* The payload is a copy of its own, so reading past it is caught. */
    size_t len = (size_t)(end - p);
    char *payload = malloc(len ? len : 1);
    if (!payload)
        abort();
    memcpy(payload, p, len);
    if (which == 'h')
        heartbeat(payload, len);
    else
        delta(subject, reply, payload, len);
    free(payload);
    free(reply);
    free(subject);
    return 0;
}
