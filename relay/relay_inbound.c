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
 *   meridian.presence.<room> / .hb          relay_presence_on_message
 *   meridian.msg.<region>.<room>            fast path: relay_deliver_message
 *   meridian.commit.<room>                  commit: relay_deliver_commit, relay_repair_commit
 *
 * Commits and subscription confirmations are wired here rather than in a
 * feature, since several features meet on them: repair looks for gaps in
 * the seqs delivery has delivered, and a room newly subscribed starts its
 * presence and repair and answers the joins waiting for it.
 */
#include "relay_inbound.h"
#include "mr_log.h"
#include "relay_deliver.h"
#include "relay_metrics.h"
#include "relay_presence.h"
#include "relay_publish.h"
#include "relay_repair.h"
#include "relay_resume.h"

#include <stdlib.h>
#include <string.h>

static bool valid_msg_id(const char *s)
{
    if (!s || strlen(s) != MR_MSG_ID_LEN)
        return false;
    for (int i = 0; i < MR_MSG_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The room: the last token of `rest` ("<region>.<room>" on the fast path, "<room>" for commits). */
static const char *room_of(const char *rest)
{
    const char *last = strrchr(rest, '.');
    return last ? last + 1 : rest;
}

static void on_fast_path(relay *r, natsMsg *msg, const char *rest)
{
    const char *room_name = room_of(rest);
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return; /* everyone left after the message was queued */
    const char *msg_id = NULL;
    if (natsMsgHeader_Get(msg, RELAY_HDR_MSG_ID, &msg_id) != NATS_OK || !valid_msg_id(msg_id)) {
        mr_log_warn("nats: message on %s without a valid " RELAY_HDR_MSG_ID "; dropped",
                    natsMsg_GetSubject(msg));
        return;
    }
    relay_deliver_message(r, room, msg_id, natsMsg_GetData(msg),
                          (size_t)natsMsg_GetDataLength(msg));
}

static void on_commit(relay *r, natsMsg *msg, const char *rest)
{
    const char *room_name = room_of(rest);
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return;
    json_t *c = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
    json_t *msg_id = json_object_get(c, "msg_id");
    json_t *seq = json_object_get(c, "seq");
    json_t *message = json_object_get(c, "message");
    if (!json_is_string(msg_id) || !valid_msg_id(json_string_value(msg_id)) ||
        !json_is_integer(seq) || !json_is_object(message)) {
        mr_log_warn("nats: malformed commit on %s; dropped", natsMsg_GetSubject(msg));
        json_decref(c);
        return;
    }
    relay_deliver_commit(r, room, json_string_value(msg_id), json_integer_value(seq), message);
    relay_repair_commit(r, room);
    json_decref(c);
}

static void on_presence(relay *r, natsMsg *msg, const char *rest)
{
    relay_presence_on_message(r, rest, natsMsg_GetReply(msg), natsMsg_GetData(msg),
                              (size_t)natsMsg_GetDataLength(msg));
}

/* Subjects this relay subscribes to, by prefix; `rest` is what follows the prefix. */
static const struct {
    const char *prefix;
    size_t len;
    void (*handle)(relay *r, natsMsg *msg, const char *rest);
} subjects[] = {
    {RELAY_SUBJ_MSG, sizeof RELAY_SUBJ_MSG - 1, on_fast_path},
    {RELAY_SUBJ_COMMIT, sizeof RELAY_SUBJ_COMMIT - 1, on_commit},
    {RELAY_SUBJ_PRESENCE, sizeof RELAY_SUBJ_PRESENCE - 1, on_presence},
};

/*
 * The server has the subscriptions of room `rest` ("<id>.<room>"), unless
 * the room went (and maybe came back, with another id) since it asked.
 */
static void on_subscribed(relay *r, const char *rest)
{
    char *end;
    unsigned long long id = strtoull(rest, &end, 10);
    if (*end != '.')
        return;
    relay_room *room = relay_room_find(&r->rooms, end + 1, strlen(end + 1));
    if (!room || !room->subscribing || room->subscribe_id != id)
        return;
    room->subscribing = false;
    r->rooms.subscribing--;
    relay_presence_room_created(r, room);
    relay_repair_room_created(r, room);
    relay_resume_subscribed(r, room);
}

/* A reply on this relay's inbox; `token` is what follows the inbox prefix. */
static void on_reply(relay *r, natsMsg *msg, const char *token)
{
    const char *data = natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (strncmp(token, RELAY_INBOX_PUBACK, sizeof RELAY_INBOX_PUBACK - 1) == 0)
        relay_publish_ack(r, token + sizeof RELAY_INBOX_PUBACK - 1, data, len);
    else if (strncmp(token, RELAY_INBOX_PRESENCE, sizeof RELAY_INBOX_PRESENCE - 1) == 0)
        relay_presence_snapshot_reply(r, token + sizeof RELAY_INBOX_PRESENCE - 1, data, len);
    else if (strncmp(token, RELAY_INBOX_REPAIR, sizeof RELAY_INBOX_REPAIR - 1) == 0)
        relay_repair_reply(r, token + sizeof RELAY_INBOX_REPAIR - 1, data, len);
    else if (strncmp(token, RELAY_INBOX_SUBSCRIBED, sizeof RELAY_INBOX_SUBSCRIBED - 1) == 0)
        on_subscribed(r, token + sizeof RELAY_INBOX_SUBSCRIBED - 1);
    else
        relay_resume_reply(r, token, data, len);
}

static void on_message(relay *r, natsMsg *msg)
{
    const char *subject = natsMsg_GetSubject(msg);
    const char *inbox = relay_nats_inbox_prefix(r->nats);
    size_t il = strlen(inbox);
    if (strncmp(subject, inbox, il) == 0) {
        on_reply(r, msg, subject + il);
        return;
    }
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        if (strncmp(subject, subjects[i].prefix, subjects[i].len) == 0) {
            subjects[i].handle(r, msg, subject + subjects[i].len);
            return;
        }
    }
}

void relay_inbound_take(relay *r)
{
    relay_inbound *in = relay_nats_take(r->nats);
    while (in) {
        relay_inbound *next = in->next;
        on_message(r, in->msg);
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
