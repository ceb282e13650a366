/*
 * Relay-to-client frames (docs/protocol.md, "Server frames"). The frames the
 * control plane and clients share with the relay (error, message, ack, ...)
 * are serialised by common/mr_proto.c; they are named here too, so this file
 * is the one place to read what a client can receive.
 */
#include "relay_frames.h"

#include <stdlib.h>
#include <string.h>

static void put_id(mr_buf *b, json_t *id)
{
    if (!id)
        return;
    char *ids = json_dumps(id, JSON_ENCODE_ANY);
    mr_buf_printf(b, ",\"id\":%s", ids);
    free(ids);
}

void relay_frame_urls(mr_buf *b, const relay *r)
{
    json_t *urls = r->drain_urls;
    mr_buf_putc(b, '[');
    if (urls) {
        size_t i;
        json_t *e;
        json_array_foreach(urls, i, e)
        {
            if (i)
                mr_buf_putc(b, ',');
            mr_buf_json_str(b, json_string_value(e), json_string_length(e));
        }
    } else {
        for (size_t i = 0; i < r->cfg->fallback_count; i++) {
            if (i)
                mr_buf_putc(b, ',');
            mr_buf_json_str(b, r->cfg->fallback_urls[i], strlen(r->cfg->fallback_urls[i]));
        }
    }
    mr_buf_putc(b, ']');
}

void relay_frame_welcome(mr_buf *b, const relay *r, json_t *id, const char *sid, const char *user)
{
    const relay_config *c = r->cfg;
    mr_buf_puts(b, "{\"type\":\"welcome\"");
    put_id(b, id);
    mr_buf_puts(b, ",\"region\":");
    mr_buf_json_str(b, c->region, strlen(c->region));
    mr_buf_puts(b, ",\"node\":");
    mr_buf_json_str(b, c->node_id, strlen(c->node_id));
    mr_buf_printf(b, ",\"session\":\"%s\",\"user\":", sid);
    mr_buf_json_str(b, user, strlen(user));
    mr_buf_printf(b,
                  ",\"heartbeat\":%lld,\"limits\":{\"max_message_bytes\":%lld,\"publish_rate\":%g,"
                  "\"publish_burst\":%g,\"max_rooms\":%lld,\"idle_timeout\":%lld,"
                  "\"signal_rate\":%g,\"signal_burst\":%g,\"signal_max_bytes\":%lld}",
                  (long long)c->limits.ping_interval_s, (long long)c->limits.max_message_bytes,
                  c->limits.publish_rate, c->limits.publish_burst,
                  (long long)c->limits.max_rooms_per_connection,
                  (long long)c->limits.idle_timeout_s, c->signal_rate, c->signal_burst,
                  (long long)c->signal_max_bytes);
    mr_buf_puts(b, ",\"fallback\":");
    relay_frame_urls(b, r);
    mr_buf_putc(b, '}');
}

void relay_frame_joined(mr_buf *b, json_t *id, const char *room)
{
    mr_proto_joined(b, id, room);
}

void relay_frame_joined_resume(mr_buf *b, json_t *id, const char *room,
                               const relay_resume_result *res)
{
    mr_buf_puts(b, "{\"type\":\"joined\"");
    put_id(b, id);
    mr_buf_puts(b, ",\"room\":");
    mr_buf_json_str(b, room, strlen(room));
    mr_buf_printf(b, ",\"recovered\":%s", res->recovered ? "true" : "false");
    if (res->ok) {
        mr_buf_printf(b, ",\"history\":%zu,\"since\":%lld,\"through\":%lld", res->count,
                      (long long)res->since, (long long)res->through);
        if (res->has_last_seq)
            mr_buf_printf(b, ",\"last_seq\":%lld", (long long)res->last_seq);
        if (!res->recovered)
            mr_buf_printf(b, ",\"reason\":\"history_limit\",\"next_after\":%lld",
                          (long long)res->through);
    } else {
        mr_buf_puts(b, ",\"reason\":");
        mr_buf_json_str(b, res->reason, strlen(res->reason));
    }
    mr_buf_putc(b, '}');
}

void relay_frame_left(mr_buf *b, json_t *id, const char *room)
{
    mr_proto_left(b, id, room);
}

void relay_frame_ack(mr_buf *b, json_t *id, const char *room, const char *msg_id, const char *mid,
                     size_t mid_len)
{
    mr_proto_ack(b, id, room, msg_id, mid, mid_len);
}

void relay_frame_message(mr_buf *b, const mr_envelope *env)
{
    mr_proto_message(b, env);
}

void relay_frame_stored_message(mr_buf *b, json_t *message)
{
    char *text = json_dumps(message, JSON_COMPACT);
    mr_buf_puts(b, text);
    free(text);
}

void relay_frame_commit(mr_buf *b, const char *room, size_t room_len, const char *msg_id,
                        int64_t seq)
{
    mr_buf_puts(b, "{\"type\":\"commit\",\"room\":");
    mr_buf_json_str(b, room, room_len);
    mr_buf_printf(b, ",\"msg_id\":\"%s\",\"seq\":%lld}", msg_id, (long long)seq);
}

void relay_frame_presence_members(mr_buf *b, json_t *id, const char *room, size_t room_len,
                                  const mr_buf *members)
{
    mr_buf_puts(b, "{\"type\":\"presence\"");
    put_id(b, id);
    mr_buf_puts(b, ",\"room\":");
    mr_buf_json_str(b, room, room_len);
    mr_buf_puts(b, ",\"members\":");
    mr_buf_append(b, members->data, members->len);
    mr_buf_putc(b, '}');
}

void relay_frame_presence_event(mr_buf *b, const char *room, size_t room_len, const char *event,
                                const char *user, long sessions)
{
    mr_buf_puts(b, "{\"type\":\"presence\",\"room\":");
    mr_buf_json_str(b, room, room_len);
    mr_buf_printf(b, ",\"event\":\"%s\",\"user\":", event);
    mr_buf_json_str(b, user, strlen(user));
    mr_buf_printf(b, ",\"sessions\":%ld}", sessions);
}

void relay_frame_pong(mr_buf *b, json_t *id, int64_t now_ms)
{
    mr_proto_pong(b, id, now_ms);
}

void relay_frame_reconnect(mr_buf *b, const relay *r)
{
    mr_buf_puts(b, "{\"type\":\"reconnect\",\"reason\":\"draining\",\"urls\":");
    relay_frame_urls(b, r);
    mr_buf_putc(b, '}');
}

void relay_frame_error(mr_buf *b, json_t *id, mr_error_code code, const char *message)
{
    mr_proto_error_frame(b, id, code, message);
}

void relay_frame_refreshed(mr_buf *b, json_t *id, int64_t exp)
{
    mr_buf_puts(b, "{\"type\":\"refreshed\"");
    put_id(b, id);
    mr_buf_printf(b, ",\"exp\":%lld}", (long long)exp);
}

void relay_frame_refresh_due(mr_buf *b, int64_t exp)
{
    mr_buf_printf(b, "{\"type\":\"refresh_due\",\"exp\":%lld}", (long long)exp);
}

void relay_frame_left_because(mr_buf *b, const char *room, const char *reason)
{
    mr_buf_puts(b, "{\"type\":\"left\",\"room\":");
    mr_buf_json_str(b, room, strlen(room));
    mr_buf_puts(b, ",\"reason\":");
    mr_buf_json_str(b, reason, strlen(reason));
    mr_buf_putc(b, '}');
}

void relay_frame_signal(mr_buf *b, const char *room, const char *from, const char *region,
                        const char *node, const char *data, size_t data_len)
{
    mr_buf_puts(b, "{\"type\":\"signal\",\"room\":");
    mr_buf_json_str(b, room, strlen(room));
    mr_buf_puts(b, ",\"from\":");
    mr_buf_json_str(b, from, strlen(from));
    mr_buf_puts(b, ",\"region\":");
    mr_buf_json_str(b, region, strlen(region));
    mr_buf_puts(b, ",\"node\":");
    mr_buf_json_str(b, node, strlen(node));
    mr_buf_puts(b, ",\"data\":");
    mr_buf_append(b, data, data_len);
    mr_buf_putc(b, '}');
}
