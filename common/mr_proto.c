/*
 * Client protocol parsing and serialising.
 *
 * Parsing is strict: a frame is a JSON object with a string "type", every
 * field has one type, and sizes are bounded here so that later code never
 * sees an oversized room name or id. Serialising writes JSON by hand into an
 * mr_buf: the frames are small and fixed, and this keeps allocations out of
 * the publish path except for the payload jansson dumps once.
 */
#include "mr_proto.h"

#include "mr_alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const error_names[MR_ERR_COUNT] = {
    [MR_ERR_BAD_JSON] = "bad_json",
    [MR_ERR_BAD_FRAME] = "bad_frame",
    [MR_ERR_UNKNOWN_TYPE] = "unknown_type",
    [MR_ERR_NOT_AUTHENTICATED] = "not_authenticated",
    [MR_ERR_ALREADY_AUTHENTICATED] = "already_authenticated",
    [MR_ERR_AUTH_FAILED] = "auth_failed",
    [MR_ERR_INVALID_ROOM] = "invalid_room",
    [MR_ERR_FORBIDDEN] = "forbidden",
    [MR_ERR_NOT_JOINED] = "not_joined",
    [MR_ERR_TOO_MANY_ROOMS] = "too_many_rooms",
    [MR_ERR_RATE_LIMITED] = "rate_limited",
    [MR_ERR_UNAVAILABLE] = "unavailable",
    [MR_ERR_INTERNAL] = "internal",
    [MR_ERR_USER_MISMATCH] = "user_mismatch",
};

const char *mr_proto_error_name(mr_error_code code)
{
    return code < MR_ERR_COUNT ? error_names[code] : "internal";
}

bool mr_proto_error_retryable(mr_error_code code)
{
    return code == MR_ERR_RATE_LIMITED || code == MR_ERR_UNAVAILABLE || code == MR_ERR_INTERNAL;
}

bool mr_room_valid(const char *room, size_t len)
{
    if (len == 0 || len > MR_ROOM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = room[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool printable_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static int fail(mr_proto_err *err, mr_error_code code, const char *msg)
{
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s", msg);
    return -1;
}

/* Fetch a required or optional string member, bounded in length. */
static int get_str(json_t *root, const char *key, bool required, size_t max, const char **out,
                   size_t *outlen, mr_proto_err *err)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        if (!required)
            return 0;
        err->code = MR_ERR_BAD_FRAME;
        snprintf(err->message, sizeof err->message, "missing field \"%s\"", key);
        return -1;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
        err->code = MR_ERR_BAD_FRAME;
        snprintf(err->message, sizeof err->message,
                 "field \"%s\" must be a string of 1 to %zu bytes", key, max);
        return -1;
    }
    *out = json_string_value(v);
    *outlen = json_string_length(v);
    return 0;
}

static int get_room(json_t *root, mr_frame *f, mr_proto_err *err)
{
    json_t *v = json_object_get(root, "room");
    if (!v)
        return fail(err, MR_ERR_BAD_FRAME, "missing field \"room\"");
    if (!json_is_string(v) || !mr_room_valid(json_string_value(v), json_string_length(v)))
        return fail(err, MR_ERR_INVALID_ROOM,
                    "room must be 1 to 128 characters of A-Z a-z 0-9 _ -");
    f->room = json_string_value(v);
    f->room_len = json_string_length(v);
    return 0;
}

int mr_proto_parse(const char *buf, size_t len, mr_frame *f, mr_proto_err *err)
{
    memset(f, 0, sizeof *f);
    memset(err, 0, sizeof *err);
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return fail(err, MR_ERR_BAD_JSON, "frame is not valid JSON");
    f->root = root;
    if (!json_is_object(root)) {
        fail(err, MR_ERR_BAD_FRAME, "frame must be a JSON object");
        goto err;
    }
    json_t *id = json_object_get(root, "id");
    if (id) {
        bool ok =
            (json_is_string(id) && json_string_length(id) <= MR_REQ_ID_MAX) || json_is_integer(id);
        if (!ok) {
            fail(err, MR_ERR_BAD_FRAME,
                 "field \"id\" must be a string of at most 64 bytes or an integer");
            goto err;
        }
        f->id = id;
        err->id = json_incref(id);
    }
    json_t *type = json_object_get(root, "type");
    if (!type) {
        fail(err, MR_ERR_BAD_FRAME, "missing field \"type\"");
        goto err;
    }
    if (!json_is_string(type)) {
        fail(err, MR_ERR_BAD_FRAME, "field \"type\" must be a string");
        goto err;
    }
    const char *t = json_string_value(type);
    if (strcmp(t, "hello") == 0 || strcmp(t, "refresh") == 0) {
        f->type = t[0] == 'h' ? MR_FRAME_HELLO : MR_FRAME_REFRESH;
        if (get_str(root, "token", true, 8192, &f->token, &f->token_len, err) < 0)
            goto err;
    } else if (strcmp(t, "join") == 0) {
        f->type = MR_FRAME_JOIN;
        if (get_room(root, f, err) < 0)
            goto err;
        json_t *presence = json_object_get(root, "presence");
        if (presence && !json_is_boolean(presence)) {
            fail(err, MR_ERR_BAD_FRAME, "field \"presence\" must be true or false");
            goto err;
        }
        f->presence = !presence || json_is_true(presence);
        json_t *since = json_object_get(root, "since");
        if (since) {
            if (!json_is_integer(since) || json_integer_value(since) < 0) {
                fail(err, MR_ERR_BAD_FRAME, "field \"since\" must be a non-negative integer");
                goto err;
            }
            f->has_since = true;
            f->since = json_integer_value(since);
        }
        json_t *rewind = json_object_get(root, "rewind");
        if (rewind) {
            if (!json_is_integer(rewind) || json_integer_value(rewind) < 0 || since) {
                fail(err, MR_ERR_BAD_FRAME,
                     "field \"rewind\" must be a non-negative integer, without \"since\"");
                goto err;
            }
            f->has_rewind = true;
            f->rewind = json_integer_value(rewind);
        }
    } else if (strcmp(t, "leave") == 0 || strcmp(t, "presence") == 0) {
        f->type = t[0] == 'l' ? MR_FRAME_LEAVE : MR_FRAME_PRESENCE;
        if (get_room(root, f, err) < 0)
            goto err;
    } else if (strcmp(t, "publish") == 0) {
        f->type = MR_FRAME_PUBLISH;
        if (get_room(root, f, err) < 0)
            goto err;
        if (get_str(root, "mid", false, MR_MID_MAX, &f->mid, &f->mid_len, err) < 0)
            goto err;
        if (f->mid && !printable_ascii(f->mid, f->mid_len)) {
            fail(err, MR_ERR_BAD_FRAME, "field \"mid\" must be printable ASCII without spaces");
            goto err;
        }
        f->data = json_object_get(root, "data");
        if (!f->data) {
            fail(err, MR_ERR_BAD_FRAME, "missing field \"data\"");
            goto err;
        }
    } else if (strcmp(t, "signal") == 0) {
        f->type = MR_FRAME_SIGNAL;
        if (get_room(root, f, err) < 0)
            goto err;
        f->data = json_object_get(root, "data");
        if (!f->data) {
            fail(err, MR_ERR_BAD_FRAME, "missing field \"data\"");
            goto err;
        }
    } else if (strcmp(t, "ping") == 0) {
        f->type = MR_FRAME_PING;
    } else {
        fail(err, MR_ERR_UNKNOWN_TYPE, "unknown frame type");
        goto err;
    }
    /* The request id now belongs to the frame; the error copy is not needed. */
    json_decref(err->id);
    err->id = NULL;
    return 0;
err:
    json_decref(root);
    f->root = NULL;
    f->id = NULL;
    return -1;
}

void mr_frame_free(mr_frame *f)
{
    json_decref(f->root);
    f->root = NULL;
}

void mr_proto_err_free(mr_proto_err *err)
{
    json_decref(err->id);
    err->id = NULL;
}

void mr_msg_id(const char *room, size_t room_len, const char *sender, const char *mid,
               size_t mid_len, char out[MR_MSG_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t sl = strlen(sender);
    char stackbuf[512];
    size_t n = room_len + sl + mid_len + 2;
    char *in = n <= sizeof stackbuf ? stackbuf : mr_malloc(n);
    memcpy(in, room, room_len);
    in[room_len] = '\0';
    memcpy(in + room_len + 1, sender, sl);
    in[room_len + 1 + sl] = '\0';
    memcpy(in + room_len + sl + 2, mid, mid_len);
    EVP_Digest(in, n, md, &mdlen, EVP_sha256(), NULL);
    if (in != stackbuf)
        free(in);
    for (int i = 0; i < MR_MSG_ID_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[MR_MSG_ID_LEN] = '\0';
}

static void put_id(mr_buf *b, json_t *id)
{
    if (!id)
        return;
    if (json_is_string(id)) {
        mr_buf_puts(b, ",\"id\":");
        mr_buf_json_str(b, json_string_value(id), json_string_length(id));
    } else if (json_is_integer(id)) {
        mr_buf_printf(b, ",\"id\":%lld", (long long)json_integer_value(id));
    }
}

void mr_proto_error_frame(mr_buf *b, json_t *id, mr_error_code code, const char *message)
{
    mr_buf_puts(b, "{\"type\":\"error\"");
    put_id(b, id);
    mr_buf_printf(b, ",\"code\":\"%s\",\"message\":", mr_proto_error_name(code));
    mr_buf_json_str(b, message, strlen(message));
    mr_buf_printf(b, ",\"retryable\":%s}", mr_proto_error_retryable(code) ? "true" : "false");
}

void mr_proto_pong(mr_buf *b, json_t *id, int64_t now_ms)
{
    mr_buf_puts(b, "{\"type\":\"pong\"");
    put_id(b, id);
    mr_buf_printf(b, ",\"ts\":%lld}", (long long)now_ms);
}

static void room_reply(mr_buf *b, const char *type, json_t *id, const char *room)
{
    mr_buf_printf(b, "{\"type\":\"%s\"", type);
    put_id(b, id);
    mr_buf_puts(b, ",\"room\":");
    mr_buf_json_str(b, room, strlen(room));
    mr_buf_putc(b, '}');
}

void mr_proto_joined(mr_buf *b, json_t *id, const char *room)
{
    room_reply(b, "joined", id, room);
}

void mr_proto_left(mr_buf *b, json_t *id, const char *room)
{
    room_reply(b, "left", id, room);
}

void mr_proto_ack(mr_buf *b, json_t *id, const char *room, const char *msg_id, const char *mid,
                  size_t mid_len)
{
    mr_buf_puts(b, "{\"type\":\"ack\"");
    put_id(b, id);
    mr_buf_puts(b, ",\"room\":");
    mr_buf_json_str(b, room, strlen(room));
    mr_buf_printf(b, ",\"msg_id\":\"%s\",\"mid\":", msg_id);
    mr_buf_json_str(b, mid, mid_len);
    mr_buf_putc(b, '}');
}

void mr_proto_message(mr_buf *b, const mr_envelope *e)
{
    mr_buf_puts(b, "{\"type\":\"message\",\"room\":");
    mr_buf_json_str(b, e->room, e->room_len);
    mr_buf_printf(b, ",\"msg_id\":\"%s\",\"from\":", e->msg_id);
    mr_buf_json_str(b, e->from, strlen(e->from));
    mr_buf_puts(b, ",\"mid\":");
    mr_buf_json_str(b, e->mid, e->mid_len);
    mr_buf_puts(b, ",\"region\":");
    mr_buf_json_str(b, e->region, strlen(e->region));
    mr_buf_puts(b, ",\"node\":");
    mr_buf_json_str(b, e->node, strlen(e->node));
    mr_buf_printf(b, ",\"ts\":%lld,\"data\":", (long long)e->ts_ms);
    char *data = json_dumps(e->data, JSON_COMPACT | JSON_ENCODE_ANY);
    mr_buf_puts(b, data ? data : "null");
    free(data);
    mr_buf_putc(b, '}');
}
