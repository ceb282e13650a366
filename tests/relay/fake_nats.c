/* The relay_nats API without a connection: see fake_nats.h. */
#include "fake_nats.h"

#include "mr_alloc.h"

#include <stdio.h>
#include <string.h>

fake_nats_log fake_nats = {.connected = true};

struct relay_nats {
    int unused;
};
static relay_nats the_fake;
static relay_inbound *queued, *queued_tail;

void fake_nats_reset(void)
{
    memset(&fake_nats, 0, sizeof fake_nats);
    fake_nats.connected = true;
    while (queued) {
        relay_inbound *next = queued->next;
        natsMsg_Destroy(queued->msg);
        free(queued);
        queued = next;
    }
    queued_tail = NULL;
}

const fake_nats_call *fake_nats_last_publish(void)
{
    FX_ASSERT(fake_nats.publishes > 0, "nothing was published");
    return &fake_nats.publish[fake_nats.publishes - 1];
}

void fake_nats_deliver(const char *subject, const char *data)
{
    /* Messages need the library (its garbage collector frees them). */
    static bool opened;
    if (!opened) {
        FX_ASSERT(nats_Open(-1) == NATS_OK, "nats_Open failed");
        opened = true;
    }
    relay_inbound *in = mr_calloc(1, sizeof *in);
    FX_ASSERT(natsMsg_Create(&in->msg, subject, NULL, data, (int)strlen(data)) == NATS_OK,
              "natsMsg_Create failed");
    if (queued_tail)
        queued_tail->next = in;
    else
        queued = in;
    queued_tail = in;
}

const fake_nats_call *fake_nats_last_request(void)
{
    FX_ASSERT(fake_nats.requests > 0, "no request was made");
    return &fake_nats.request[fake_nats.requests - 1];
}

static void record(fake_nats_call *log, int *n, const char *subject, const char *reply,
                   const char *data, size_t len)
{
    FX_ASSERT(*n < FAKE_NATS_MAX, "more than %d calls recorded", FAKE_NATS_MAX);
    fake_nats_call *c = &log[(*n)++];
    snprintf(c->subject, sizeof c->subject, "%s", subject);
    snprintf(c->reply, sizeof c->reply, "%s", reply ? reply : "");
    snprintf(c->body, sizeof c->body, "%.*s", (int)len, data);
}

relay_nats *relay_nats_new(const relay_config *cfg, relay_nats_wake_cb wake, void *ud)
{
    (void)cfg, (void)wake, (void)ud;
    return &the_fake;
}

int relay_nats_connect(relay_nats *n, char *err, size_t errlen)
{
    (void)n, (void)err, (void)errlen;
    return 0;
}

bool relay_nats_connected(relay_nats *n)
{
    (void)n;
    return fake_nats.connected;
}

int relay_nats_subscribe(relay_nats *n, const char *room, natsSubscription **msgs,
                         natsSubscription **commits, natsSubscription **presence)
{
    (void)n, (void)room;
    *msgs = *commits = *presence = NULL;
    return fake_nats.connected ? 0 : -1;
}

int relay_nats_confirm(relay_nats *n, const char *token)
{
    (void)n;
    if (!fake_nats.connected)
        return -1;
    record(fake_nats.publish, &fake_nats.publishes, "confirm", token, "", 0);
    return 0;
}

int relay_nats_subscribe_subject(relay_nats *n, const char *subject, natsSubscription **out)
{
    (void)n, (void)subject;
    *out = NULL;
    return fake_nats.connected ? 0 : -1;
}

void relay_nats_unsubscribe(natsSubscription *sub)
{
    (void)sub;
}

int relay_nats_publish(relay_nats *n, const char *subject, const char *msg_id,
                       const char *reply_token, const char *data, size_t len)
{
    (void)n;
    if (!fake_nats.connected)
        return -1;
    /* JetStream publishes (with a reply token) record the token, core ones the msg_id. */
    record(fake_nats.publish, &fake_nats.publishes, subject, reply_token ? reply_token : msg_id,
           data, len);
    snprintf(fake_nats.publish[fake_nats.publishes - 1].msg_id, sizeof fake_nats.publish[0].msg_id,
             "%s", msg_id);
    return 0;
}

void relay_nats_pass_done(relay_nats *n)
{
    (void)n;
}

bool relay_nats_stream_ready(relay_nats *n)
{
    (void)n;
    return true;
}

const char *relay_nats_inbox_prefix(relay_nats *n)
{
    (void)n;
    return "_INBOX.fake.";
}

int relay_nats_request(relay_nats *n, const char *subject, const char *token, const char *data,
                       size_t len)
{
    (void)n;
    if (!fake_nats.connected)
        return -1;
    record(fake_nats.request, &fake_nats.requests, subject, token, data, len);
    return 0;
}

int relay_nats_publish_raw(relay_nats *n, const char *subject, const char *reply, const char *data,
                           size_t len)
{
    (void)n;
    if (!fake_nats.connected)
        return -1;
    record(fake_nats.publish, &fake_nats.publishes, subject, reply, data, len);
    return 0;
}

relay_inbound *relay_nats_take(relay_nats *n)
{
    (void)n;
    relay_inbound *h = queued;
    queued = queued_tail = NULL;
    return h;
}

void relay_nats_flush(relay_nats *n)
{
    (void)n;
}

void relay_nats_close(relay_nats *n)
{
    (void)n;
}

void relay_nats_free(relay_nats *n)
{
    (void)n;
}
