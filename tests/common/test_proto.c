/* Client protocol: parsing every frame type, every error, and the serialisers. */
#include "test_suites.h"
#include "mr_proto.h"

#include <check.h>
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
    ck_assert(json_is_object(f.data));
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

Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, parse_frames);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, error_keeps_request_id);
    tcase_add_test(tc, room_names);
    tcase_add_test(tc, msg_ids);
    tcase_add_test(tc, serialise);
    suite_add_tcase(s, tc);
    return s;
}
