/*
 * Client protocol parsing and serialising.
 *
 * Parsing is strict: a frame is a JSON object with a string "type", every
 * field has one type, and sizes are bounded here so that later code never
 * sees an oversized room name or id. Two parsers take a frame: the scan
 * (parse_fast) takes the frames clients send every second -- plainly valid
 * JSON, names and values unescaped -- apart where they lie, without a tree,
 * and keeps the payload as its text, which the `message` frame then copies
 * as it is; every other frame, and every frame with something to refuse,
 * goes through jansson (parse_full), which decides and words the error. So
 * the two never disagree on what is accepted, and the publish path makes no
 * tree and dumps no payload (it was half the relay's instructions per
 * publish; docs/benchmarks.md, "Durable publishes").
 *
 * Serialising writes JSON by hand into an mr_buf: the frames are small and
 * fixed, and this keeps allocations out of the publish path.
 */
#include "mr_proto.h"

#include "mr_alloc.h"
#include "mr_json_scan.h"

#include <openssl/evp.h>
#include <pthread.h>

#include <stddef.h>
#include <stdint.h>
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

bool mr_instance_valid(const char *s, size_t len)
{
    if (len == 0 || len >= MR_INSTANCE_MAX || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '/'))
            return false;
    return true;
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

/* The payload of a publish or signal (required) kept as compact JSON text in f->text. */
static int get_data(json_t *root, mr_frame *f, mr_proto_err *err)
{
    json_t *data = json_object_get(root, "data");
    if (!data) {
        fail(err, MR_ERR_BAD_FRAME, "missing field \"data\"");
        return -1;
    }
    f->text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!f->text)
        f->text = mr_strdup("null");
    f->data = f->text;
    f->data_len = strlen(f->text);
    f->text_size = f->data_len + 1;
    return 0;
}

bool mr_msg_id_valid(const char *s, size_t len)
{
    if (!s || len != MR_MSG_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

_Static_assert(MR_HAVE_MAX == 1024, "the error message below names the limit");

/* join's `have`: the msg_ids the client got without their seq (docs/protocol.md). */
static int get_have(json_t *root, mr_frame *f, mr_proto_err *err)
{
    json_t *have = json_object_get(root, "have");
    if (!have)
        return 0;
    if (!json_is_array(have) || json_array_size(have) > MR_HAVE_MAX) {
        fail(err, MR_ERR_BAD_FRAME, "field \"have\" must be an array of at most 1024 msg_ids");
        return -1;
    }
    size_t i;
    json_t *id;
    json_array_foreach(have, i, id)
    {
        if (!json_is_string(id) ||
            !mr_msg_id_valid(json_string_value(id), json_string_length(id))) {
            fail(err, MR_ERR_BAD_FRAME,
                 "field \"have\" must hold msg_ids (32 lowercase hex digits)");
            return -1;
        }
    }
    f->have = have;
    return 0;
}

/* The full parser: jansson decides, and says what is wrong. */
static int parse_full(const char *buf, size_t len, mr_frame *f, mr_proto_err *err)
{
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
        json_t *echo = f->type == MR_FRAME_HELLO ? json_object_get(root, "echo") : NULL;
        if (echo && !json_is_boolean(echo)) {
            fail(err, MR_ERR_BAD_FRAME, "field \"echo\" must be true or false");
            goto err;
        }
        f->no_echo = echo && json_is_false(echo);
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
        if (get_have(root, f, err) < 0)
            goto err;
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
        if (get_data(root, f, err) < 0)
            goto err;
    } else if (strcmp(t, "signal") == 0) {
        f->type = MR_FRAME_SIGNAL;
        if (get_room(root, f, err) < 0)
            goto err;
        if (get_data(root, f, err) < 0)
            goto err;
    } else if (strcmp(t, "ping") == 0) {
        f->type = MR_FRAME_PING;
    } else {
        fail(err, MR_ERR_UNKNOWN_TYPE, "unknown frame type");
        goto err;
    }
    /* The request id now belongs to the frame (the reference taken for the error). */
    err->id = NULL;
    return 0;
err:
    json_decref(root);
    f->root = NULL;
    f->id = NULL;
    return -1;
}

static bool named(const mr_json_member *m, const char *name, size_t n)
{
    return m->key_len == n && memcmp(m->key, name, n) == 0;
}

/* A string member as the scan found it, unescaped, of 1..max bytes. */
static bool plain_str(const mr_json_member *m, size_t max)
{
    return m->type == MR_JSON_STRING && !m->value_escaped && m->value_len >= 1 &&
           m->value_len <= max;
}

/*
 * The scan: 1 when `f` is filled, 0 when the full parser must decide (the
 * frame is not plainly valid, or something in it is refused or needs
 * decoding). Everything it accepts, parse_full accepts with the same values.
 */
static int parse_fast(const char *buf, size_t len, mr_frame *f)
{
    mr_json_object o;
    if (!mr_json_scan_object(buf, len, &o))
        return 0;
    const mr_json_member *type = NULL, *id = NULL, *room = NULL, *token = NULL, *mid = NULL,
                         *data = NULL, *presence = NULL, *since = NULL, *rewind = NULL,
                         *have = NULL, *echo = NULL;
    for (size_t i = 0; i < o.count; i++) {
        const mr_json_member *m = &o.members[i];
        if (m->key_escaped)
            return 0;
        for (size_t k = 0; k < i; k++)
            if (named(&o.members[k], m->key, m->key_len))
                return 0; /* a repeated name: jansson refuses the frame */
        const mr_json_member **slot = named(m, "type", 4)       ? &type
                                      : named(m, "id", 2)       ? &id
                                      : named(m, "room", 4)     ? &room
                                      : named(m, "token", 5)    ? &token
                                      : named(m, "mid", 3)      ? &mid
                                      : named(m, "data", 4)     ? &data
                                      : named(m, "presence", 8) ? &presence
                                      : named(m, "since", 5)    ? &since
                                      : named(m, "rewind", 6)   ? &rewind
                                      : named(m, "have", 4)     ? &have
                                      : named(m, "echo", 4)     ? &echo
                                                                : NULL;
        if (slot)
            *slot = m;
    }
    if (!type || type->type != MR_JSON_STRING || type->value_escaped)
        return 0;
    if (id && id->type != MR_JSON_INTEGER &&
        !(id->type == MR_JSON_STRING && !id->value_escaped && id->value_len <= MR_REQ_ID_MAX))
        return 0;
    const char *t = type->value;
    size_t tl = type->value_len;
#define IS(name) (tl == sizeof(name) - 1 && memcmp(t, name, tl) == 0)
    bool needs_room = true;
    if (IS("hello")) {
        f->type = MR_FRAME_HELLO;
        needs_room = false;
        if (!token || !plain_str(token, 8192))
            return 0;
        if (echo && echo->type != MR_JSON_TRUE && echo->type != MR_JSON_FALSE)
            return 0;
        f->no_echo = echo && echo->type == MR_JSON_FALSE;
    } else if (IS("join")) {
        f->type = MR_FRAME_JOIN;
        if (rewind || have)
            return 0; /* rare (resumes, rewinds): the full parser checks them */
        if (presence && presence->type != MR_JSON_TRUE && presence->type != MR_JSON_FALSE)
            return 0;
        if (since && (since->type != MR_JSON_INTEGER || since->value[0] == '-'))
            return 0;
        f->presence = !presence || presence->type == MR_JSON_TRUE;
        f->has_since = since != NULL;
        f->since = since ? strtoll(since->value, NULL, 10) : 0;
    } else if (IS("leave")) {
        f->type = MR_FRAME_LEAVE;
    } else if (IS("presence")) {
        f->type = MR_FRAME_PRESENCE;
    } else if (IS("publish")) {
        f->type = MR_FRAME_PUBLISH;
        if (!data ||
            (mid && (!plain_str(mid, MR_MID_MAX) || !printable_ascii(mid->value, mid->value_len))))
            return 0;
    } else if (IS("ping")) {
        f->type = MR_FRAME_PING;
        needs_room = false;
    } else {
        return 0;
    }
#undef IS
    if (needs_room && (!room || room->type != MR_JSON_STRING || room->value_escaped ||
                       !mr_room_valid(room->value, room->value_len)))
        return 0;
    /* Accepted. The strings are NUL-terminated in a copy, over their closing quotes. */
    f->text = len < MR_FRAME_INLINE ? f->inline_text : mr_malloc(len + 1);
    memcpy(f->text, buf, len);
    f->text[len] = '\0';
    f->text_size = len + 1;
#define COPY(m, ptr, n)                                                                            \
    do {                                                                                           \
        (ptr) = f->text + ((m)->value - buf);                                                      \
        (n) = (m)->value_len;                                                                      \
        f->text[(m)->value - buf + (m)->value_len] = '\0';                                         \
    } while (0)
    if (needs_room)
        COPY(room, f->room, f->room_len);
    if (f->type == MR_FRAME_HELLO)
        COPY(token, f->token, f->token_len);
    if (f->type == MR_FRAME_PUBLISH) {
        if (mid)
            COPY(mid, f->mid, f->mid_len);
        /* A string's span is inside its quotes: the payload keeps them. */
        bool quoted = data->type == MR_JSON_STRING;
        f->data = f->text + (data->value - buf) - quoted;
        f->data_len = data->value_len + 2 * quoted;
    }
#undef COPY
    if (id)
        f->id = id->type == MR_JSON_INTEGER ? json_integer(strtoll(id->value, NULL, 10))
                                            : json_stringn(id->value, id->value_len);
    return 1;
}

int mr_proto_parse(const char *buf, size_t len, mr_frame *f, mr_proto_err *err)
{
    memset(f, 0, offsetof(mr_frame, inline_text));
    memset(err, 0, sizeof *err);
    if (parse_fast(buf, len, f))
        return 0;
    /* The scan may have read a few fields; the full parser starts afresh. */
    memset(f, 0, offsetof(mr_frame, inline_text));
    return parse_full(buf, len, f, err);
}

void mr_frame_free(mr_frame *f)
{
    json_decref(f->id);
    f->id = NULL;
    json_decref(f->root);
    f->root = NULL;
    if (f->text != f->inline_text)
        free(f->text);
    f->text = NULL;
    f->text_size = 0;
}

/* `p` moved from src's text to dst's when it points into it (else kept: the tree, or elsewhere). */
static const char *rebase(const char *p, const mr_frame *src, const mr_frame *dst)
{
    uintptr_t at = (uintptr_t)p, start = (uintptr_t)src->text;
    if (!p || !src->text || at < start || at - start >= src->text_size)
        return p;
    return dst->text + (p - src->text);
}

void mr_frame_copy(mr_frame *dst, const mr_frame *src)
{
    memcpy(dst, src, offsetof(mr_frame, inline_text));
    json_incref(dst->id);
    json_incref(dst->root);
    if (!src->text)
        return;
    dst->text = src->text_size <= MR_FRAME_INLINE ? dst->inline_text : mr_malloc(src->text_size);
    memcpy(dst->text, src->text, src->text_size);
    dst->room = rebase(src->room, src, dst);
    dst->token = rebase(src->token, src, dst);
    dst->mid = rebase(src->mid, src, dst);
    dst->data = rebase(src->data, src, dst);
}

void mr_proto_err_free(mr_proto_err *err)
{
    json_decref(err->id);
    err->id = NULL;
}

/*
 * SHA-256 fetched once: EVP_sha256() and SHA256() make OpenSSL 3 look the
 * algorithm up again on every digest, which cost as much as the hash of a
 * short id on the publish path.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
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
    pthread_once(&sha256_once, sha256_fetch);
    EVP_Digest(in, n, md, &mdlen, sha256_md ? sha256_md : EVP_sha256(), NULL);
    if (in != stackbuf)
        free(in);
    for (int i = 0; i < MR_MSG_ID_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[MR_MSG_ID_LEN] = '\0';
}

/* Append a decimal integer without printf (acks and messages carry one or two). */
static void put_int(mr_buf *b, long long v)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[sizeof tmp - 1 - n++] = '-';
    mr_buf_append(b, tmp + sizeof tmp - n, (size_t)n);
}

static void put_id(mr_buf *b, json_t *id)
{
    if (!id)
        return;
    if (json_is_string(id)) {
        mr_buf_puts(b, ",\"id\":");
        mr_buf_json_str(b, json_string_value(id), json_string_length(id));
    } else if (json_is_integer(id)) {
        mr_buf_puts(b, ",\"id\":");
        put_int(b, (long long)json_integer_value(id));
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
    size_t room_len = strlen(room);
    mr_buf_reserve(b, 96 + room_len + mid_len + MR_MSG_ID_LEN);
    mr_buf_puts(b, "{\"type\":\"ack\"");
    put_id(b, id);
    mr_buf_puts(b, ",\"room\":");
    mr_buf_json_str(b, room, room_len);
    mr_buf_puts(b, ",\"msg_id\":\"");
    mr_buf_append(b, msg_id, strlen(msg_id));
    mr_buf_puts(b, "\",\"mid\":");
    mr_buf_json_str(b, mid, mid_len);
    mr_buf_putc(b, '}');
}

void mr_proto_message(mr_buf *b, const mr_envelope *e)
{
    size_t from_len = strlen(e->from), region_len = strlen(e->region), node_len = strlen(e->node);
    /* One allocation for the usual frame: its fixed parts, the fields, a little to escape. */
    mr_buf_reserve(b, 128 + e->room_len + from_len + e->mid_len + region_len + node_len +
                          (e->data ? 64 : e->data_json_len));
    mr_buf_puts(b, "{\"type\":\"message\",\"room\":");
    mr_buf_json_str(b, e->room, e->room_len);
    mr_buf_puts(b, ",\"msg_id\":\"");
    mr_buf_append(b, e->msg_id, strlen(e->msg_id));
    mr_buf_puts(b, "\",\"from\":");
    mr_buf_json_str(b, e->from, from_len);
    mr_buf_puts(b, ",\"mid\":");
    mr_buf_json_str(b, e->mid, e->mid_len);
    mr_buf_puts(b, ",\"region\":");
    mr_buf_json_str(b, e->region, region_len);
    mr_buf_puts(b, ",\"node\":");
    mr_buf_json_str(b, e->node, node_len);
    mr_buf_puts(b, ",\"ts\":");
    put_int(b, (long long)e->ts_ms);
    mr_buf_puts(b, ",\"data\":");
    if (e->data) {
        char *data = json_dumps(e->data, JSON_COMPACT | JSON_ENCODE_ANY);
        mr_buf_puts(b, data ? data : "null");
        free(data);
    } else if (e->data_json) {
        mr_buf_append(b, e->data_json, e->data_json_len);
    } else {
        mr_buf_puts(b, "null");
    }
    mr_buf_putc(b, '}');
}
