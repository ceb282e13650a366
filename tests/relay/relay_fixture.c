/* See relay_fixture.h. */
#include "relay_fixture.h"
#include "mr_alloc.h"
#include "relay_client.h"
#include "relay_deliver.h"
#include "relay_drain.h"
#include "relay_inbound.h"
#include "relay_presence.h"
#include "relay_publish.h"
#include "relay_repair.h"
#include "relay_resume.h"
#include "relay_signal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fx_init(relay_fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fake_nats_reset();
    relay_config_defaults(&fx->cfg);
    relay *r = &fx->r;
    r->cfg = &fx->cfg;
    relay_rooms_init(&r->rooms, (uint32_t)fx->cfg.limits.dedup_window);
    mr_map_init(&r->ip_counts);
    mr_map_init(&r->conns_by_id);
    mr_map_init(&r->resumes);
    relay_deliver_init(r);
    relay_presence_init(r);
    relay_repair_init(r);
    relay_resume_init(r);
    relay_signal_init(r);
    relay_drain_init(r);
    r->nats = relay_nats_new(r->cfg, NULL, NULL);
}

void fx_free(relay_fixture *fx)
{
    relay *r = &fx->r;
    while (r->conns)
        fx_close(fx, r->conns);
    relay_publish_free_all(r);
    relay_resume_free_all(r);
    relay_presence_free(r);
    relay_drain_free(r);
    mr_map_free(&r->conns_by_id, NULL);
    mr_buf_free(&r->write_batch);
    relay_rooms_free(&r->rooms);
    mr_map_free(&r->ip_counts, NULL);
    relay_config_free(&fx->cfg);
}

relay_conn *fx_conn(relay_fixture *fx, const char *user)
{
    relay_conn *c = mr_malloc(sizeof *c);
    relay_conn_attach(&fx->r, c, NULL);
    c->user = mr_strdup(user);
    return c;
}

relay_member *fx_join(relay_fixture *fx, relay_conn *c, const char *room, bool *created)
{
    bool made, first;
    relay_member *m = relay_room_join(&fx->r.rooms, room, strlen(room), c, c->user, &made, &first);
    m->presence_events = true;
    m->conn_next = c->memberships;
    c->memberships = m;
    c->room_count++;
    if (created)
        *created = made;
    return m;
}

void fx_close(relay_fixture *fx, relay_conn *c)
{
    while (c->memberships) {
        relay_member *m = c->memberships;
        c->memberships = m->conn_next;
        relay_room *room = m->room;
        bool last;
        if (relay_room_leave(&fx->r.rooms, m, c->user, &last))
            relay_room_destroy(&fx->r.rooms, room);
    }
    relay_conn_detach(c);
    free(c);
}

char **fx_take(relay_conn *c, size_t *n)
{
    char **out = mr_calloc(c->qlen + 1, sizeof *out);
    *n = c->qlen;
    for (uint32_t i = 0; i < *n; i++) {
        relay_out *o = relay_conn_queued(c, i);
        out[i] = mr_strndup((const char *)relay_out_payload(o), o->len);
    }
    /* Take them as a write would, so the queue's accounting is exercised too. */
    mr_buf wb = MR_BUF_INIT;
    while (c->qlen)
        relay_conn_take_batch(c, &wb);
    mr_buf_free(&wb);
    FX_ASSERT(c->qbytes == 0, "%zu bytes still counted as queued", c->qbytes);
    return out;
}

void fx_frames_free(char **frames)
{
    for (size_t i = 0; frames && frames[i]; i++)
        free(frames[i]);
    free(frames);
}

void fx_discard(relay_conn *c)
{
    size_t n;
    fx_frames_free(fx_take(c, &n));
}

json_t *fx_json(char **frames, size_t i)
{
    json_error_t e;
    json_t *j = json_loads(frames[i], 0, &e);
    FX_ASSERT(j != NULL, "frame %zu is not JSON: %s", i, frames[i]);
    return j;
}

void fx_msg_id(const char *room, int i, char out[MR_MSG_ID_LEN + 1])
{
    char mid[32];
    int n = snprintf(mid, sizeof mid, "m%d", i);
    mr_msg_id(room, strlen(room), "user", mid, (size_t)n, out);
}

char *fx_history(const char *room, int from, int to, bool more, int last_seq, size_t data_bytes)
{
    char *data = mr_malloc(data_bytes + 1);
    memset(data, 'd', data_bytes);
    data[data_bytes] = '\0';
    json_t *msgs = json_array();
    for (int i = from; i <= to; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id(room, i, id);
        json_array_append_new(msgs, json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "message",
                                              "room", room, "msg_id", id, "seq", i, "data", data));
    }
    free(data);
    json_t *page =
        json_pack("{s:o, s:b, s:i}", "messages", msgs, "more", more, "last_seq", last_seq);
    char *text = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    return text;
}

void fx_client_sends(relay_conn *c, const char *text)
{
    FX_ASSERT(relay_client_receive(c, text, strlen(text), false, true) == 0, "receive failed");
}

void fx_take_types(relay_conn *c, char *out, size_t cap)
{
    size_t n, used = 0;
    char **f = fx_take(c, &n);
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        json_t *j = fx_json(f, i);
        const char *id = json_string_value(json_object_get(j, "id"));
        used += (size_t)snprintf(out + used, cap - used, "%s%s%s%s", i ? " " : "",
                                 json_string_value(json_object_get(j, "type")), id ? ":" : "",
                                 id ? id : "");
        json_decref(j);
    }
    fx_frames_free(f);
}

void fx_confirm_last(relay_fixture *fx)
{
    int i = fake_nats.publishes - 1;
    while (i >= 0 && strcmp(fake_nats.publish[i].subject, "confirm") != 0)
        i--;
    FX_ASSERT(i >= 0, "no subscription confirmation asked for");
    char subject[300];
    snprintf(subject, sizeof subject, "_INBOX.fake.%s", fake_nats.publish[i].reply);
    fake_nats_deliver(subject, "");
    relay_inbound_take(&fx->r);
}
