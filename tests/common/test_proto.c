/* Client protocol: parsing every frame type, every error, and the serialisers. */
#include "test_suites.h"
#include "mr_proto.h"

#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, mr_frame *f, mr_proto_err *e)
{
    return mr_proto_parse(text, strlen(text), f, e);
}

static void expect_error(const char *text, mr_error_code code)
{
    mr_frame f;
    mr_proto_err e;
    ck_assert_msg(parse(text, &f, &e) == -1, "accepted: %s", text);
    ck_assert_msg(e.code == code, "%s: got %s, want %s", text, mr_proto_error_name(e.code),
                  mr_proto_error_name(code));
    mr_proto_err_free(&e);
}

START_TEST(parse_frames)
{
    mr_frame f;
    mr_proto_err e;
    ck_assert_int_eq(parse("{\"type\":\"hello\",\"id\":1,\"token\":\"abc\"}", &f, &e), 0);
    ck_assert_int_eq(f.type, MR_FRAME_HELLO);
    ck_assert_int_eq(f.token_len, 3);
    ck_assert_int_eq(json_integer_value(f.id), 1);
    ck_assert(!f.no_echo); /* the echo is the default */
    mr_frame_free(&f);

    ck_assert_int_eq(parse("{\"type\":\"hello\",\"token\":\"abc\",\"echo\":false}", &f, &e), 0);
    ck_assert(f.no_echo);
    mr_frame_free(&f);
    ck_assert_int_eq(parse("{\"type\":\"hello\",\"token\":\"abc\",\"echo\":true}", &f, &e), 0);
    ck_assert(!f.no_echo);
    mr_frame_free(&f);

    ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\"general\",\"since\":42}", &f, &e), 0);
    ck_assert_int_eq(f.type, MR_FRAME_JOIN);
    ck_assert(f.has_since);
    ck_assert_int_eq(f.since, 42);
    ck_assert_int_eq(f.room_len, 7);
    mr_frame_free(&f);

    ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\"r\",\"since\":4,"
                           "\"have\":[\"0123456789abcdef0123456789abcdef\"]}",
                           &f, &e),
                     0);
    ck_assert_int_eq(json_array_size(f.have), 1);
    mr_frame_free(&f);

    ck_assert_int_eq(parse("{\"type\":\"publish\",\"id\":\"x\",\"room\":\"r\",\"mid\":\"m-1\","
                           "\"data\":{\"text\":\"hi\"},\"extra\":true}",
                           &f, &e),
                     0);
    ck_assert_int_eq(f.type, MR_FRAME_PUBLISH);
    ck_assert_int_eq(f.mid_len, 3);
    ck_assert_str_eq(f.mid, "m-1");
    ck_assert_int_eq(f.data_len, 13);
    ck_assert(strncmp(f.data, "{\"text\":\"hi\"}", f.data_len) == 0);
    ck_assert_str_eq(json_string_value(f.id), "x");
    mr_frame_free(&f);

    ck_assert_int_eq(parse("{\"type\":\"publish\",\"room\":\"r\",\"data\":null}", &f, &e), 0);
    ck_assert_ptr_null(f.mid);
    mr_frame_free(&f);

    ck_assert_int_eq(parse("{\"type\":\"leave\",\"room\":\"r\"}", &f, &e), 0);
    ck_assert_int_eq(f.type, MR_FRAME_LEAVE);
    mr_frame_free(&f);
    ck_assert_int_eq(parse("{\"type\":\"presence\",\"room\":\"r\"}", &f, &e), 0);
    ck_assert_int_eq(f.type, MR_FRAME_PRESENCE);
    mr_frame_free(&f);
    ck_assert_int_eq(parse("{\"type\":\"ping\"}", &f, &e), 0);
    ck_assert_int_eq(f.type, MR_FRAME_PING);
    mr_frame_free(&f);
}
END_TEST

START_TEST(parse_errors)
{
    expect_error("", MR_ERR_BAD_JSON);
    expect_error("{", MR_ERR_BAD_JSON);
    expect_error("{\"type\":\"ping\",\"type\":\"ping\"}", MR_ERR_BAD_JSON); /* duplicate keys */
    expect_error("[1,2]", MR_ERR_BAD_FRAME);
    expect_error("\"hello\"", MR_ERR_BAD_JSON);
    expect_error("{}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":7}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"dance\"}", MR_ERR_UNKNOWN_TYPE);
    expect_error("{\"type\":\"hello\"}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"hello\",\"token\":5}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"hello\",\"token\":\"a\",\"echo\":0}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"hello\",\"token\":\"a\",\"echo\":\"no\"}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"join\"}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"join\",\"room\":\"a b\"}", MR_ERR_INVALID_ROOM);
    expect_error("{\"type\":\"join\",\"room\":\"a.b\"}", MR_ERR_INVALID_ROOM);
    expect_error("{\"type\":\"join\",\"room\":\"\"}", MR_ERR_INVALID_ROOM);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":-1}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":\"5\"}", MR_ERR_BAD_FRAME);
    /* `have`: an array of at most 1024 msg_ids, each 32 lowercase hex digits. */
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"have\":\"x\"}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"have\":[1]}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"have\":[\"abc\"]}", MR_ERR_BAD_FRAME);
    expect_error(
        "{\"type\":\"join\",\"room\":\"r\",\"have\":[\"0123456789ABCDEF0123456789abcdef\"]}",
        MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"publish\",\"room\":\"r\"}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"mid\":\"a b\",\"data\":1}",
                 MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"mid\":\"\",\"data\":1}", MR_ERR_BAD_FRAME);
    expect_error("{\"type\":\"ping\",\"id\":[1]}", MR_ERR_BAD_FRAME);
    /* 1025 ids: one too many. */
    size_t cap = 64 + (MR_HAVE_MAX + 1) * (MR_MSG_ID_LEN + 3);
    char *big = malloc(cap);
    size_t n = (size_t)snprintf(big, cap, "{\"type\":\"join\",\"room\":\"r\",\"have\":[");
    for (int i = 0; i <= MR_HAVE_MAX; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s\"%032x\"", i ? "," : "", i);
    snprintf(big + n, cap - n, "]}");
    expect_error(big, MR_ERR_BAD_FRAME);
    /* 1024 are fine. */
    char *last = strrchr(big, ',');
    snprintf(last, cap - (size_t)(last - big), "]}");
    mr_frame f2;
    mr_proto_err e2;
    ck_assert_int_eq(parse(big, &f2, &e2), 0);
    ck_assert_int_eq(json_array_size(f2.have), MR_HAVE_MAX);
    mr_frame_free(&f2);
    free(big);
    char room[200];
    memset(room, 'a', sizeof room);
    room[sizeof room - 1] = '\0';
    char frame[300];
    snprintf(frame, sizeof frame, "{\"type\":\"join\",\"room\":\"%s\"}", room);
    expect_error(frame, MR_ERR_INVALID_ROOM);
}
END_TEST

START_TEST(error_keeps_request_id)
{
    mr_frame f;
    mr_proto_err e;
    ck_assert_int_eq(parse("{\"type\":\"join\",\"id\":\"j1\",\"room\":\"bad room\"}", &f, &e), -1);
    ck_assert_ptr_nonnull(e.id);
    ck_assert_str_eq(json_string_value(e.id), "j1");
    mr_proto_err_free(&e);
}
END_TEST

START_TEST(room_names)
{
    ck_assert(mr_room_valid("general", 7));
    ck_assert(mr_room_valid("A-b_9", 5));
    ck_assert(!mr_room_valid("a*", 2));
    ck_assert(!mr_room_valid("a>", 2));
    ck_assert(!mr_room_valid("", 0));
    ck_assert(!mr_room_valid("é", 2));
}
END_TEST

START_TEST(msg_ids)
{
    char a[MR_MSG_ID_LEN + 1], b[MR_MSG_ID_LEN + 1], c[MR_MSG_ID_LEN + 1];
    mr_msg_id("r", 1, "alice", "m1", 2, a);
    mr_msg_id("r", 1, "alice", "m1", 2, b);
    mr_msg_id("r", 1, "alic", "em1", 3, c);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c); /* the separator keeps fields apart */
    ck_assert_int_eq(strlen(a), 32);
}
END_TEST

/* Message ids are the first 16 bytes of SHA-256(room NUL sender NUL mid), whatever the sizes. */
START_TEST(msg_ids_are_sha256)
{
    static const size_t mids[] = {0,  1,  40, 41,  52,  53,  54,  55,
                                  56, 60, 64, 100, 119, 120, 200, 600};
    char mid[700];
    for (size_t i = 0; i < sizeof mid; i++)
        mid[i] = (char)('a' + i % 26);
    for (size_t k = 0; k < sizeof mids / sizeof mids[0]; k++) {
        char id[MR_MSG_ID_LEN + 1], want[MR_MSG_ID_LEN + 1];
        mr_msg_id("room", 4, "user", mid, mids[k], id);
        unsigned char in[800], md[EVP_MAX_MD_SIZE];
        /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes, NUL-separated fields */
        memcpy(in, "room\0user\0", 10);
        memcpy(in + 10, mid, mids[k]);
        unsigned int mdlen = 0;
        ck_assert(EVP_Digest(in, 10 + mids[k], md, &mdlen, EVP_sha256(), NULL) == 1);
        for (int i = 0; i < MR_MSG_ID_LEN / 2; i++)
            snprintf(want + 2 * i, 3, "%02x", md[i]);
        ck_assert_msg(strcmp(id, want) == 0, "mid of %zu bytes: %s, OpenSSL %s", mids[k], id, want);
    }
}
END_TEST

START_TEST(serialise)
{
    mr_buf b = MR_BUF_INIT;
    json_t *id = json_string("q\"1");
    mr_proto_error_frame(&b, id, MR_ERR_RATE_LIMITED, "slow \"down\"\n");
    json_t *j = json_loads(b.data, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "rate_limited");
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "q\"1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "slow \"down\"\n");
    ck_assert(json_is_true(json_object_get(j, "retryable")));
    json_decref(j);
    mr_buf_reset(&b);

    json_t *data = json_loads("{\"text\":\"h\\u0001i\"}", 0, NULL);
    mr_envelope e = {.room = "r",
                     .room_len = 1,
                     .msg_id = "0123456789abcdef0123456789abcdef",
                     .from = "al\tice",
                     .mid = "m",
                     .mid_len = 1,
                     .region = "eu",
                     .node = "n1",
                     .ts_ms = 5,
                     .data = data};
    mr_proto_message(&b, &e);
    j = json_loads(b.data, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "from")), "al\tice");
    ck_assert(json_equal(json_object_get(j, "data"), data));
    json_decref(j);
    json_decref(data);
    json_decref(id);
    mr_buf_free(&b);
}
END_TEST

/*
 * Frames the scan takes and frames only jansson takes must come out the
 * same: whatever mr_proto_parse accepts, jansson (duplicates refused, as
 * the full parser does) reads to the same fields and payload, and what
 * jansson cannot read is refused as bad_json.
 */
START_TEST(fast_and_full_parsers_agree)
{
    static const char *const texts[] = {
        /* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one text, split for the width */
        "{\"type\":\"publish\",\"id\":7,\"room\":\"r\",\"mid\":\"m\",\"data\":{\"a\":[1,2.5,true,"
        "null]}}",
        "{\"type\":\"publish\",\"id\":7,\"room\":\"r\",\"mid\":\"m\",\"data\":{\"a\":[1,2.5,true,"
        "null]},"
        "\"x\":\"\\u0041\"}", /* an escape only jansson decodes: the full parser */
        " { \"type\" : \"publish\" , \"room\" : \"r\" , \"data\" : \"t\\\"x\" } ",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"\\u00e9\"}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":-0.125}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":1e3}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":12345678901234567890}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":{\"a\":1,\"a\":2}}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":[{\"b\":{\"c\":1,\"c\":1}}]}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":{\"\\/\":1,\"/\":2}}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":{\"a\":1},\"data\":{\"a\":1}}",
        "{\"type\":\"publish\",\"room\":\"r\",\"mid\":\"a\\\"b\",\"data\":1}",
        "{\"type\":\"publish\",\"room\":\"\\u0072\",\"data\":1}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"\xc3\xa9\"}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"\xc3\"}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"\\u0000\"}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":}",
        "{\"type\":\"publish\",\"room\":\"r\",\"data\":1,}",
        "{\"type\":\"publish\",\"id\":\"\\u0031\",\"room\":\"r\",\"data\":1}",
        "{\"type\":\"publish\",\"id\":1.5,\"room\":\"r\",\"data\":1}",
        "{\"type\":\"pub\\u006cish\",\"room\":\"r\",\"data\":1}",
        "{\"\\u0074ype\":\"ping\"}",
        "{\"type\":\"hello\",\"id\":\"h\",\"token\":\"a.b.c\"}",
        /* echo: a scan that ignored the field lost it */
        "{\"type\":\"hello\",\"token\":\"a.b.c\",\"echo\":false}",
        "{\"type\":\"hello\",\"token\":\"a.b.c\",\"echo\":true}",
        "{\"type\":\"hello\",\"token\":\"a.b.c\",\"echo\":null}",
        "{\"type\":\"join\",\"room\":\"r\",\"since\":-0,\"presence\":false}",
        "{\"type\":\"join\",\"room\":\"r\",\"since\":0,\"presence\":true}",
        "{\"type\":\"join\",\"room\":\"r\",\"presence\":1}",
        /* rewind (issue 16): a scan that ignored the field lost it */
        "{\"type\":\"join\",\"room\":\"r\",\"rewind\":5}",
        "{\"type\":\"join\",\"room\":\"r\",\"rewind\":5,\"since\":1}",
        /* have (chaos2): a scan that ignored the field lost it */
        "{\"type\":\"join\",\"room\":\"r\",\"since\":3,"
        "\"have\":[\"0123456789abcdef0123456789abcdef\"]}",
        "{\"type\":\"join\",\"room\":\"r\",\"have\":[]}",
        "{\"type\":\"join\",\"room\":\"r\",\"have\":[\"x\"]}",
        "{\"type\":\"join\",\"room\":\"r\",\"have\":\"0123456789abcdef0123456789abcdef\"}",
        "{\"type\":\"signal\",\"room\":\"r\",\"data\":{\"typing\":true}}",
        "{\"type\":\"leave\",\"room\":\"r\",\"x\":{\"y\":[]}}",
        "{\"type\":\"ping\",\"id\":-5}",
        "{\"type\":\"ping\"} x",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *text = texts[i];
        mr_frame f;
        mr_proto_err e;
        int rc = parse(text, &f, &e);
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        if (!j) {
            ck_assert_msg(rc == -1 && e.code == MR_ERR_BAD_JSON, "jansson refuses, we took: %s",
                          text);
            mr_proto_err_free(&e);
            continue;
        }
        if (rc != 0) {
            ck_assert_msg(e.code != MR_ERR_BAD_JSON, "jansson reads, we said bad_json: %s", text);
            mr_proto_err_free(&e);
            json_decref(j);
            continue;
        }
        ck_assert_msg(json_equal(f.id, json_object_get(j, "id")) ||
                          (!f.id && !json_object_get(j, "id")),
                      "id differs: %s", text);
        if (f.room)
            ck_assert_str_eq(f.room, json_string_value(json_object_get(j, "room")));
        if (f.mid)
            ck_assert_str_eq(f.mid, json_string_value(json_object_get(j, "mid")));
        if (f.token)
            ck_assert_str_eq(f.token, json_string_value(json_object_get(j, "token")));
        if (f.type == MR_FRAME_HELLO)
            ck_assert_msg(f.no_echo == json_is_false(json_object_get(j, "echo")),
                          "echo differs: %s", text);
        if (f.type == MR_FRAME_JOIN) {
            json_t *rw = json_object_get(j, "rewind");
            ck_assert_msg(f.has_rewind == (rw != NULL), "rewind differs: %s", text);
            if (rw)
                ck_assert_int_eq(f.rewind, json_integer_value(rw));
            json_t *have = json_object_get(j, "have");
            ck_assert_msg(have ? json_equal(f.have, have) : !f.have, "have differs: %s", text);
        }
        if (f.type == MR_FRAME_PUBLISH || f.type == MR_FRAME_SIGNAL) {
            json_t *d =
                json_loadb(f.data, f.data_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
            ck_assert_msg(d && json_equal(d, json_object_get(j, "data")), "data differs: %s", text);
            json_decref(d);
        }
        mr_frame_free(&f);
        json_decref(j);
    }
}
END_TEST

/* Frames larger than the frame's own buffer are copied to the heap, and freed. */
START_TEST(large_frames)
{
    char text[20000];
    int n = snprintf(text, sizeof text, "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"");
    memset(text + n, 'x', 15000);
    snprintf(text + n + 15000, sizeof text - (size_t)n - 15000, "\",\"mid\":\"m\"}");
    mr_frame f;
    mr_proto_err e;
    ck_assert_int_eq(parse(text, &f, &e), 0);
    ck_assert_uint_eq(f.data_len, 15002);
    ck_assert_str_eq(f.mid, "m");
    ck_assert_str_eq(f.room, "r");
    mr_frame_free(&f);
}
END_TEST

/*
 * A copy outlives the frame it was made from (hooks hold frames): its
 * strings point into its own text, whether the frame's text was inline, on
 * the heap or written by the full parser.
 */
START_TEST(copies_outlive_the_original)
{
    char big[2000];
    int n =
        snprintf(big, sizeof big, "{\"type\":\"publish\",\"id\":\"q\",\"room\":\"r\",\"data\":\"");
    memset(big + n, 'y', 1500);
    snprintf(big + n + 1500, sizeof big - (size_t)n - 1500, "\",\"mid\":\"m1\"}");
    const char *texts[] = {
        "{\"type\":\"publish\",\"id\":\"q\",\"room\":\"room1\",\"mid\":\"m1\",\"data\":[1]}",
        big,
        "{\"type\":\"publish\",\"id\":\"q\",\"room\":\"\\u0072\",\"mid\":\"m1\",\"data\":{\"a\":"
        "\"\\u00e9\"}}",
        "{\"type\":\"join\",\"id\":\"q\",\"room\":\"r\",\"have\":["
        "\"0123456789abcdef0123456789abcdef\"]}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        mr_frame *f = malloc(sizeof *f), copy;
        mr_proto_err e;
        ck_assert_int_eq(parse(texts[i], f, &e), 0);
        char room[200], data[2000];
        snprintf(room, sizeof room, "%s", f->room);
        snprintf(data, sizeof data, "%.*s", (int)f->data_len, f->data ? f->data : "");
        mr_frame_copy(&copy, f);
        /* Scribble over the original before freeing it: nothing may still point there. */
        if (f->text)
            memset(f->text, '#', f->text_size);
        mr_frame_free(f);
        memset(f, '#', sizeof *f);
        free(f);
        ck_assert_str_eq(copy.room, room);
        ck_assert_str_eq(json_string_value(copy.id), "q");
        if (copy.type == MR_FRAME_PUBLISH) {
            ck_assert_str_eq(copy.mid, "m1");
            ck_assert_int_eq((int)copy.data_len, (int)strlen(data));
            ck_assert(memcmp(copy.data, data, copy.data_len) == 0);
        } else {
            ck_assert_uint_eq(json_array_size(copy.have), 1);
        }
        mr_frame_free(&copy);
    }
}
END_TEST

Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, parse_frames);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, error_keeps_request_id);
    tcase_add_test(tc, room_names);
    tcase_add_test(tc, msg_ids);
    tcase_add_test(tc, msg_ids_are_sha256);
    tcase_add_test(tc, serialise);
    tcase_add_test(tc, fast_and_full_parsers_agree);
    tcase_add_test(tc, large_frames);
    tcase_add_test(tc, copies_outlive_the_original);
    suite_add_tcase(s, tc);
    return s;
}
