/*
 * NATS dispatch.
 *
 * libnats threads only queue (relay_nats.c); here, on the lws thread, each
 * queued item goes to its handler:
 *
 *   <inbox>a.<slot>.<gen>  PubAck of a JetStream publish: relay_publish_ack
 *   <inbox>p.<room>  presence snapshot      relay_presence_snapshot_reply
 *   <inbox>c.<room>  repair history page    relay_repair_reply
 *   <inbox>s.<id>.<room>  subscriptions confirmed: presence, repair, resume
 *   <inbox><id>      resume history page    relay_resume_reply
 *   meridian.presence.<room>                relay_presence_on_message
 *   meridian.relay.hb                       relay_presence_on_heartbeat
 *   meridian.msg.<region>.<room>            fast path: relay_deliver_message
 *   meridian.commit.<room>                  commit: relay_deliver_commit, relay_repair_commit
 *   meridian.sig.<region>.<room>            ephemeral signal: relay_signal_deliver
 *
 * Commits and subscription confirmations are wired here rather than in a
 * feature, since several features meet on them: repair looks for gaps in
 * the seqs delivery has delivered, and a room newly subscribed starts its
 * presence and repair and answers the joins waiting for it.
 *
 * Whatever any process connected to NATS publishes arrives here, so every
 * subject token and field is checked the way the frame parser checks client
 * frames: rooms and regions by their grammar, ids by their form, payloads by
 * size, and a message is forwarded to clients only as the JSON object it
 * claims to be. A malformed message is dropped, counted in
 * meridian_relay_nats_rejected_total and logged at most once a second.
 */
#include "relay_inbound.h"
#include "mr_json_scan.h"
#include "mr_log.h"
#include "mr_time.h"
#include "relay_deliver.h"
#include "relay_metrics.h"
#include "relay_presence.h"
#include "relay_publish.h"
#include "relay_repair.h"
#include "relay_resume.h"
#include "relay_signal.h"

#include <stdlib.h>
#include <string.h>

/*
 * Payload bytes a message or commit may have beyond limits.max_message_bytes:
 * the envelope (room, sender, mid, region, node, ids, JSON punctuation and
 * escapes) stays well under this; data re-serialised by the publishing relay
 * is never longer than it arrived.
 */
#define ENVELOPE_SLACK 8192
/* Longest reply subject a snapshot request may name (NATS inboxes are far shorter). */
#define REPLY_SUBJECT_MAX 256

/* Count a dropped message and say why, at most once a second. */
static void reject(relay *r, natsMsg *msg, const char *why)
{
    mr_metric_inc(&relay_m.nats_rejected);
    r->inbound_rejected++;
    int64_t now = mr_now_us();
    if (now - r->inbound_warned_us < 1000000)
        return;
    const char *subject = natsMsg_GetSubject(msg);
    mr_log_warn("nats: dropped a malformed message on %.*s: %s (%llu dropped since the last "
                "warning)",
                (int)strnlen(subject, 200), subject, why, (unsigned long long)r->inbound_rejected);
    r->inbound_warned_us = now;
    r->inbound_rejected = 0;
}

static bool valid_msg_id(const char *s)
{
    return s && mr_msg_id_valid(s, strlen(s));
}

/* A region token as relay_config.c accepts them: 1-64 of A-Z a-z 0-9 _ -. */
static bool valid_region(const char *s, size_t len)
{
    return len <= 64 && mr_room_valid(s, len);
}

static bool valid_room(const char *s)
{
    return mr_room_valid(s, strlen(s));
}

static size_t payload_max(relay *r)
{
    return (size_t)r->cfg->limits.max_message_bytes * 2 + ENVELOPE_SLACK;
}

/* The member `key` of a scanned object is the plain string `want`. */
static bool member_is(const mr_json_object *o, const char *key, const char *want, size_t want_len)
{
    bool repeated = false; /* mr_json_member_get only ever sets it to true */
    const mr_json_member *m = mr_json_member_get(o, key, &repeated);
    return m && !repeated && m->type == MR_JSON_STRING && !m->value_escaped &&
           m->value_len == want_len && memcmp(m->value, want, want_len) == 0;
}

/* Like member_is, on a parsed object. */
static bool field_is(json_t *o, const char *key, const char *want, size_t want_len)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) == want_len &&
           memcmp(json_string_value(v), want, want_len) == 0;
}

/*
 * A fast-path payload is forwarded to clients as it is, so it must be the
 * `message` frame it claims to be: a JSON object (valid UTF-8 included) of
 * type "message" for this room with this identity. The allocation-free scan
 * decides the common case; anything it does not decide goes to jansson.
 */
static bool valid_message_frame(const char *data, size_t len, const char *room, const char *msg_id)
{
    size_t rl = strlen(room);
    mr_json_object o;
    if (mr_json_scan_object(data, len, &o))
        return member_is(&o, "type", "message", 7) && member_is(&o, "room", room, rl) &&
               member_is(&o, "msg_id", msg_id, MR_MSG_ID_LEN);
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_object(j) && field_is(j, "type", "message", 7) &&
              field_is(j, "room", room, rl) && field_is(j, "msg_id", msg_id, MR_MSG_ID_LEN);
    json_decref(j);
    return ok;
}

/* meridian.msg.<region>.<room>: `rest` is "<region>.<room>". */
static bool on_fast_path(relay *r, natsMsg *msg, const char *rest)
{
    const char *dot = strchr(rest, '.');
    if (!dot || !valid_region(rest, (size_t)(dot - rest)) || !valid_room(dot + 1))
        return false;
    const char *room_name = dot + 1;
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return true; /* everyone left after the message was queued */
    const char *msg_id = NULL;
    const char *data = natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (natsMsgHeader_Get(msg, RELAY_HDR_MSG_ID, &msg_id) != NATS_OK || !valid_msg_id(msg_id) ||
        len > payload_max(r) || !valid_message_frame(data, len, room_name, msg_id))
        return false;
    relay_deliver_message(r, room, msg_id, data, len);
    return true;
}

/* Seqs are positive and stay exact in a JavaScript number. */
#define SEQ_MAX ((json_int_t)1 << 53)

/* meridian.commit.<room>: {"room","msg_id","seq","message"}, the message as history has it. */
static bool on_commit(relay *r, natsMsg *msg, const char *room_name)
{
    if (!valid_room(room_name))
        return false;
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return true;
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (len > payload_max(r))
        return false;
    json_t *c = json_loadb(natsMsg_GetData(msg), len, JSON_REJECT_DUPLICATES, NULL);
    json_t *msg_id = json_object_get(c, "msg_id");
    json_t *seq = json_object_get(c, "seq");
    json_t *message = json_object_get(c, "message");
    size_t rl = strlen(room_name);
    bool ok = json_is_string(msg_id) && valid_msg_id(json_string_value(msg_id)) &&
              json_is_integer(seq) && json_integer_value(seq) >= 1 &&
              json_integer_value(seq) <= SEQ_MAX && json_is_object(message) &&
              field_is(c, "room", room_name, rl) && field_is(message, "type", "message", 7) &&
              field_is(message, "room", room_name, rl) &&
              field_is(message, "msg_id", json_string_value(msg_id), MR_MSG_ID_LEN);
    if (ok) {
        relay_deliver_commit(r, room, json_string_value(msg_id), json_integer_value(seq), message);
        relay_repair_commit(r, room);
    }
    json_decref(c);
    return ok;
}

/*
 * Bytes a signal may have beyond signals.max_bytes of data: the room (128),
 * the sender (256, up to 6 bytes each when escaped), region, node and
 * punctuation.
 */
#define SIGNAL_SLACK 4096

/* A relay instance id as presence makes them: 1-159 bytes of A-Z a-z 0-9 _ - /. */
static bool valid_instance(json_t *v)
{
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (!s || n == 0 || n >= RELAY_NODE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(mr_room_valid(s + i, 1) || s[i] == '/'))
            return false;
    return true;
}

/*
 * meridian.sig.<region>.<room>: forwarded to clients as it is, so it must be
 * the `signal` frame it claims to be, of this room and region, from a user
 * id a token could carry; the echo of this relay's own signals is dropped.
 */
static bool on_signal(relay *r, natsMsg *msg, const char *rest)
{
    const char *dot = strchr(rest, '.');
    if (!dot || !valid_region(rest, (size_t)(dot - rest)) || !valid_room(dot + 1))
        return false;
    const char *room_name = dot + 1;
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (len > (size_t)r->cfg->signal_max_bytes + SIGNAL_SLACK)
        return false;
    const char *data = natsMsg_GetData(msg);
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *from = json_object_get(j, "from");
    json_t *node = json_object_get(j, "node");
    bool ok = json_is_object(j) && field_is(j, "type", "signal", 6) &&
              field_is(j, "room", room_name, strlen(room_name)) &&
              field_is(j, "region", rest, (size_t)(dot - rest)) && json_is_string(from) &&
              json_string_length(from) >= 1 && json_string_length(from) <= MR_JWT_SUB_MAX &&
              valid_instance(node) && json_object_get(j, "data");
    if (ok && room && strcmp(json_string_value(node), r->instance) != 0)
        relay_signal_deliver(r, room, data, len);
    json_decref(j);
    return ok;
}

/* A NATS subject a reply can go to: printable ASCII without spaces, bounded. */
static bool valid_reply_subject(const char *s)
{
    size_t n = strnlen(s, REPLY_SUBJECT_MAX + 1);
    if (n > REPLY_SUBJECT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

/* meridian.presence.<room>: a delta, or a snapshot request when it has a reply subject. */
static bool on_presence(relay *r, natsMsg *msg, const char *room)
{
    const char *reply = natsMsg_GetReply(msg);
    if (!valid_room(room) || (reply && !valid_reply_subject(reply)))
        return false;
    return relay_presence_on_message(r, room, reply, natsMsg_GetData(msg),
                                     (size_t)natsMsg_GetDataLength(msg));
}

/* meridian.relay.hb: heartbeats and bye; nothing may follow the subject. */
static bool on_heartbeat(relay *r, natsMsg *msg, const char *rest)
{
    if (rest[0])
        return false;
    return relay_presence_on_heartbeat(r, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
}

/* Subjects this relay subscribes to, by prefix; `rest` is what follows the prefix. */
static const struct {
    const char *prefix;
    size_t len;
    bool (*handle)(relay *r, natsMsg *msg, const char *rest);
} subjects[] = {
    {RELAY_SUBJ_MSG, sizeof RELAY_SUBJ_MSG - 1, on_fast_path},
    {RELAY_SUBJ_COMMIT, sizeof RELAY_SUBJ_COMMIT - 1, on_commit},
    {RELAY_SUBJ_PRESENCE, sizeof RELAY_SUBJ_PRESENCE - 1, on_presence},
    {RELAY_SUBJ_HEARTBEAT, sizeof RELAY_SUBJ_HEARTBEAT - 1, on_heartbeat},
    {RELAY_SUBJ_SIGNAL, sizeof RELAY_SUBJ_SIGNAL - 1, on_signal},
};

/* A resume's request id: what relay_resume.c puts in its inbox token. */
static bool valid_request_id(const char *s)
{
    size_t n = strnlen(s, 21);
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/*
 * The server has the subscriptions of room `rest` ("<id>.<room>"), unless
 * the room went (and maybe came back, with another id) since it asked.
 */
static bool on_subscribed(relay *r, const char *rest)
{
    const char *dot = strchr(rest, '.');
    if (!dot || dot == rest || dot - rest > 20 || !valid_room(dot + 1))
        return false;
    for (const char *p = rest; p < dot; p++)
        if (*p < '0' || *p > '9')
            return false;
    unsigned long long id = strtoull(rest, NULL, 10);
    relay_room *room = relay_room_find(&r->rooms, dot + 1, strlen(dot + 1));
    if (!room || !room->subscribing || room->subscribe_id != id)
        return true;
    room->subscribing = false;
    r->rooms.subscribing--;
    relay_presence_room_created(r, room);
    relay_repair_room_created(r, room);
    relay_resume_subscribed(r, room);
    return true;
}

/* A reply on this relay's inbox; `token` is what follows the inbox prefix. */
static bool on_reply(relay *r, natsMsg *msg, const char *token)
{
    const char *data = natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (strncmp(token, RELAY_INBOX_PUBACK, sizeof RELAY_INBOX_PUBACK - 1) == 0)
        return relay_publish_ack(r, token + sizeof RELAY_INBOX_PUBACK - 1, data, len);
    if (strncmp(token, RELAY_INBOX_PRESENCE, sizeof RELAY_INBOX_PRESENCE - 1) == 0) {
        const char *room = token + sizeof RELAY_INBOX_PRESENCE - 1;
        return valid_room(room) && relay_presence_snapshot_reply(r, room, data, len);
    }
    if (strncmp(token, RELAY_INBOX_REPAIR, sizeof RELAY_INBOX_REPAIR - 1) == 0) {
        const char *room = token + sizeof RELAY_INBOX_REPAIR - 1;
        if (!valid_room(room))
            return false;
        relay_repair_reply(r, room, data, len);
        return true;
    }
    if (strncmp(token, RELAY_INBOX_SUBSCRIBED, sizeof RELAY_INBOX_SUBSCRIBED - 1) == 0)
        return on_subscribed(r, token + sizeof RELAY_INBOX_SUBSCRIBED - 1);
    if (!valid_request_id(token))
        return false;
    relay_resume_reply(r, token, data, len);
    return true;
}

void relay_inbound_message(relay *r, natsMsg *msg)
{
    const char *subject = natsMsg_GetSubject(msg);
    const char *inbox = relay_nats_inbox_prefix(r->nats);
    size_t il = strlen(inbox);
    if (strncmp(subject, inbox, il) == 0) {
        if (!on_reply(r, msg, subject + il))
            reject(r, msg, "bad reply");
        return;
    }
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        if (strncmp(subject, subjects[i].prefix, subjects[i].len) == 0) {
            if (!subjects[i].handle(r, msg, subject + subjects[i].len))
                reject(r, msg, "bad subject or payload");
            return;
        }
    }
    reject(r, msg, "not a subject the relay handles");
}

void relay_inbound_take(relay *r)
{
    relay_inbound *in = relay_nats_take(r->nats);
    while (in) {
        relay_inbound *next = in->next;
        relay_inbound_message(r, in->msg);
        natsMsg_Destroy(in->msg);
        free(in);
        in = next;
    }
    bool connected = relay_nats_connected(r->nats);
    mr_metric_set(&relay_m.nats_connected, connected);
    /* Presence deltas sent while disconnected were lost: announce everything again. */
    if (connected && !r->nats_was_connected)
        relay_presence_reannounce(r);
    r->nats_was_connected = connected;
}
