/*
 * The presence parsers (ctl_presence_parse.h): what a NATS client sends on
 * meridian.presence.<room> and meridian.relay.hb, validated into a
 * ctl_presence_item. Nothing here allocates beyond jansson's own parse.
 */
#include "ctl_presence_parse.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

/* Copy a valid node id of `j` into out->node. */
static bool take_node(json_t *j, ctl_presence_item *out)
{
    json_t *node = json_object_get(j, "node");
    if (!json_is_string(node) ||
        !mr_instance_valid(json_string_value(node), json_string_length(node)))
        return false;
    memcpy(out->node, json_string_value(node), json_string_length(node) + 1);
    return true;
}

/* Load `data` as a JSON object of at most CTL_PRESENCE_MSG_MAX bytes, or NULL. */
static json_t *load_object(const char *data, size_t len, const char **why)
{
    if (len > CTL_PRESENCE_MSG_MAX) {
        *why = "larger than 4096 bytes";
        return NULL;
    }
    json_t *j = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        *why = "not a JSON object";
        json_decref(j);
        return NULL;
    }
    return j;
}

int ctl_presence_parse_delta(const char *subject, const char *reply, const char *data, size_t len,
                             ctl_presence_item *out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    memset(out, 0, sizeof *out);
    size_t pl = strlen(CTL_PRESENCE_SUBJECT_PREFIX);
    const char *room = strncmp(subject, CTL_PRESENCE_SUBJECT_PREFIX, pl) == 0 ? subject + pl : NULL;
    size_t room_len = room ? strlen(room) : 0;
    if (!room || !mr_room_valid(room, room_len)) {
        *why = "subject is not meridian.presence.<room>";
        return CTL_PRESENCE_BAD;
    }
    /* A relay asking the others for a snapshot: theirs to answer. */
    if (reply && reply[0])
        return CTL_PRESENCE_IGNORED;
    json_t *j = load_object(data, len, why);
    if (!j)
        return CTL_PRESENCE_BAD;
    int rc = CTL_PRESENCE_BAD;
    json_t *op = json_object_get(j, "op");
    json_t *user = json_object_get(j, "user");
    json_t *sessions = json_object_get(j, "sessions");
    json_t *seq = json_object_get(j, "seq");
    if (!json_is_string(op) || strcmp(json_string_value(op), "set") != 0)
        *why = "op is not \"set\"";
    else if (!take_node(j, out))
        *why = "node missing or malformed";
    else if (!json_is_string(user) || json_string_length(user) == 0 ||
             json_string_length(user) > CTL_PRESENCE_USER_MAX ||
             strlen(json_string_value(user)) != json_string_length(user))
        *why = "user missing or malformed";
    else if (!json_is_integer(sessions) || json_integer_value(sessions) < 0 ||
             json_integer_value(sessions) > CTL_PRESENCE_SESSIONS_MAX)
        *why = "sessions missing or out of range";
    else if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        /* Relays before seq was added send none: their deltas cannot be ordered. */
        *why = "seq missing or not a positive integer";
    else {
        out->kind = CTL_PRESENCE_SET;
        /* mr_room_valid bounded it by MR_ROOM_MAX: it fits with its NUL. */
        memcpy(out->room, room, room_len + 1);
        memcpy(out->user, json_string_value(user), json_string_length(user) + 1);
        out->sessions = (long)json_integer_value(sessions);
        out->seq = (int64_t)json_integer_value(seq);
        rc = CTL_PRESENCE_OK;
    }
    json_decref(j);
    return rc;
}

int ctl_presence_parse_heartbeat(const char *data, size_t len, ctl_presence_item *out,
                                 const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    memset(out, 0, sizeof *out);
    json_t *j = load_object(data, len, why);
    if (!j)
        return CTL_PRESENCE_BAD;
    int rc = CTL_PRESENCE_BAD;
    json_t *op = json_object_get(j, "op");
    if (!take_node(j, out))
        *why = "node missing or malformed";
    else if (op && (!json_is_string(op) || strcmp(json_string_value(op), "bye") != 0))
        *why = "op is not \"bye\"";
    else {
        out->kind = op ? CTL_PRESENCE_BYE : CTL_PRESENCE_SEEN;
        rc = CTL_PRESENCE_OK;
    }
    json_decref(j);
    return rc;
}
