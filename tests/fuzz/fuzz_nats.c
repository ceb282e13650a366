/*
 * libFuzzer targets for what a relay receives from NATS, one per subject
 * family (FUZZ_FAMILY, set by tests/fuzz/CMakeLists.txt):
 *
 *   fuzz_nats_msg        meridian.msg.<rest>       "<rest>\n<Nats-Msg-Id>\n<payload>"
 *   fuzz_nats_commit     meridian.commit.<rest>    "<rest>\n<payload>"
 *   fuzz_nats_presence   meridian.presence.<rest>  "<rest>\n<reply>\n<payload>"
 *   fuzz_nats_heartbeat  meridian.relay.hb<rest>   "<rest>\n<payload>"
 *   fuzz_nats_signal     meridian.sig.<rest>       "<rest>\n<payload>"
 *   fuzz_nats_history    <inbox><token>            "<which><token>\n<payload>": which 'r' answers
 *                        the pending resume, 'c' the repair of room r, 'p' its presence snapshot,
 *                        anything else uses <token> as it is
 *
 * Each input runs against a fresh relay (the unit tests' fixture and fake
 * NATS) with members in rooms "r" and "hb", a resume and a repair waiting
 * for history. The message goes through the relay's dispatch, then the
 * housekeeping runs with every other relay's heartbeats missed (the expiry
 * that once looped forever). Whatever was queued for a client must be valid
 * JSON; a hang is caught by libFuzzer's -timeout.
 */
#include "fuzz_target.h"
#include "fake_nats.h"
#include "mr_log.h"
#include "relay_fixture.h"
#include "relay_inbound.h"
#include "relay_presence.h"
#include "relay_repair.h"
#include "relay_resume.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    FAMILY_MSG,
    FAMILY_COMMIT,
    FAMILY_PRESENCE,
    FAMILY_HEARTBEAT,
    FAMILY_HISTORY,
    FAMILY_SIGNAL
};

#ifndef FUZZ_FAMILY
#error "FUZZ_FAMILY must name the subject family"
#endif

static relay_fixture fx;

/* The next '\n'-terminated field of the input as a C string (NULs end it early). */
static char *field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = strndup((const char *)*p, n);
    *p += n + (nl ? 1 : 0);
    return s;
}

static void deliver(const char *subject, const char *reply, const char *msg_id, const uint8_t *data,
                    size_t len)
{
    natsMsg *msg = NULL;
    if (natsMsg_Create(&msg, subject, reply && reply[0] ? reply : NULL, (const char *)data,
                       (int)len) != NATS_OK)
        return;
    if (!msg_id || natsMsgHeader_Set(msg, RELAY_HDR_MSG_ID, msg_id) == NATS_OK)
        relay_inbound_message(&fx.r, msg);
    natsMsg_Destroy(msg);
}

/* Every frame queued for `c` must be JSON a client can parse. */
static void check_frames(relay_conn *c)
{
    size_t n;
    char **frames = fx_take(c, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loads(frames[i], 0, NULL);
        if (!json_is_object(j))
            abort();
        json_decref(j);
    }
    fx_frames_free(frames);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool opened;
    if (!opened && nats_Open(-1) != NATS_OK)
        abort();
    opened = true;
    fx_init(&fx);
    mr_log_set_level(MR_LOG_ERROR);
    relay *r = &fx.r;
    relay_conn *alice = fx_conn(&fx, "alice"), *bob = fx_conn(&fx, "bob");
    relay_member *ma = fx_join(&fx, alice, "r", NULL);
    relay_presence_local(r, ma->room, "alice", +1, alice);
    relay_member *mb = fx_join(&fx, bob, "r", NULL);
    relay_presence_local(r, mb->room, "bob", +1, bob);
    relay_member *mh = fx_join(&fx, alice, "hb", NULL);
    relay_presence_local(r, mh->room, "alice", +1, alice);
    relay_repair_room_created(r, ma->room);
    relay_resume_start(r, bob, mb, 1, NULL);
    char resume_token[256];
    snprintf(resume_token, sizeof resume_token, "%s", fake_nats_last_request()->reply);
    fake_nats_reset();

    const uint8_t *p = data, *end = data + size;
    char subject[1024];
    int family = FUZZ_FAMILY;
    if (family == FAMILY_MSG) {
        char *rest = field(&p, end), *id = field(&p, end);
        snprintf(subject, sizeof subject, RELAY_SUBJ_MSG "%s", rest);
        deliver(subject, NULL, id, p, (size_t)(end - p));
        free(rest);
        free(id);
    } else if (family == FAMILY_PRESENCE) {
        char *rest = field(&p, end), *reply = field(&p, end);
        snprintf(subject, sizeof subject, RELAY_SUBJ_PRESENCE "%s", rest);
        deliver(subject, reply, NULL, p, (size_t)(end - p));
        free(rest);
        free(reply);
    } else if (family == FAMILY_HISTORY) {
        char which = p < end ? (char)*p++ : 0;
        char *token = field(&p, end);
        const char *inbox = relay_nats_inbox_prefix(r->nats);
        if (which == 'r')
            snprintf(subject, sizeof subject, "%s%s", inbox, resume_token);
        else if (which == 'c')
            snprintf(subject, sizeof subject, "%s" RELAY_INBOX_REPAIR "r", inbox);
        else if (which == 'p')
            snprintf(subject, sizeof subject, "%s" RELAY_INBOX_PRESENCE "r", inbox);
        else
            snprintf(subject, sizeof subject, "%s%s", inbox, token);
        deliver(subject, NULL, NULL, p, (size_t)(end - p));
        free(token);
    } else {
        char *rest = field(&p, end);
        snprintf(subject, sizeof subject, "%s%s",
                 family == FAMILY_COMMIT   ? RELAY_SUBJ_COMMIT
                 : family == FAMILY_SIGNAL ? RELAY_SUBJ_SIGNAL
                                           : RELAY_SUBJ_HEARTBEAT,
                 rest);
        deliver(subject, NULL, NULL, p, (size_t)(end - p));
        free(rest);
    }

    /* Housekeeping, with every other relay's heartbeats long missed. */
    size_t b;
    for (mr_map_entry *e = mr_map_first(&r->presence_nodes, &b); e;
         e = mr_map_next(&r->presence_nodes, &b, e))
        *(int64_t *)e->value = 0; /* node_info.last_seen_us */
    relay_presence_tick(r);
    relay_repair_tick(r);
    relay_resume_expire(r);
    check_frames(alice);
    check_frames(bob);
    fx_free(&fx);
    return 0;
}
