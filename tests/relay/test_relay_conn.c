/* The connection queue: batched write framing, the slow-consumer bound, errors, lookup by id. */
#include "relay_suites.h"
#include "relay_fixture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static relay_fixture fx;

static void setup(void)
{
    fx_init(&fx);
}

static void teardown(void)
{
    fx_free(&fx);
}

/* Decode one unmasked server frame at p; returns its total size, 0 when malformed. */
static size_t decode_frame(const unsigned char *p, size_t n, size_t *len, const unsigned char **pl)
{
    if (n < 2 || p[0] != 0x81 || (p[1] & 0x80))
        return 0; /* FIN + text, unmasked */
    size_t h = 2, l = p[1] & 0x7f;
    if (l == 126) {
        if (n < 4)
            return 0;
        l = (size_t)p[2] << 8 | p[3];
        h = 4;
        ck_assert_msg(l >= 126, "16-bit length %zu should have used the short form", l);
    } else if (l == 127) {
        if (n < 10)
            return 0;
        l = 0;
        for (int i = 0; i < 8; i++)
            l = l << 8 | p[2 + i];
        h = 10;
        ck_assert_msg(l >= 65536, "64-bit length %zu should have used a shorter form", l);
    }
    if (n < h + l)
        return 0;
    *len = l;
    *pl = p + h;
    return h + l;
}

static relay_out *frame_of(size_t len, int k)
{
    unsigned char *data = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(k * 31 + i);
    relay_out *o = relay_out_new(data, len);
    free(data);
    return o;
}

START_TEST(batch_framing)
{
    relay_conn *c = fx_conn(&fx, "alice");
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000, 3, 3, 3};
    const int n = sizeof lens / sizeof lens[0];
    for (int k = 0; k < n; k++) {
        relay_out *o = frame_of(lens[k], k);
        relay_conn_send(c, o);
        relay_out_unref(o);
    }
    ck_assert_uint_eq(c->qlen, n);
    mr_buf wb = MR_BUF_INIT;
    int k = 0, batches = 0;
    int per_batch[8];
    while (c->qlen) {
        size_t bytes = relay_conn_take_batch(c, &wb);
        const unsigned char *p = (const unsigned char *)wb.data + LWS_PRE;
        size_t off = 0, budget = 0;
        int in_batch = 0;
        while (off < bytes) {
            size_t len;
            const unsigned char *pl;
            size_t used = decode_frame(p + off, bytes - off, &len, &pl);
            ck_assert_msg(used > 0, "batch %d: malformed frame at byte %zu", batches, off);
            ck_assert_int_lt(k, n);
            ck_assert_uint_eq(len, lens[k]);
            for (size_t i = 0; i < len; i++)
                ck_assert_msg(pl[i] == (unsigned char)(k * 31 + i), "frame %d byte %zu", k, i);
            /* A frame joins a batch only while the batch is under its bound. */
            ck_assert_msg(budget < RELAY_WRITE_BATCH_BYTES, "frame %d past the batch bound", k);
            budget += len + RELAY_WS_HEADER_MAX;
            off += used;
            k++;
            in_batch++;
        }
        ck_assert_uint_eq(off, bytes);
        ck_assert_int_ge(in_batch, 1);
        /* A batch ends at the bound or with the queue. */
        ck_assert(c->qlen == 0 || budget >= RELAY_WRITE_BATCH_BYTES);
        ck_assert_int_lt(batches, 8);
        per_batch[batches++] = in_batch;
    }
    ck_assert_int_eq(k, n);
    ck_assert_uint_eq(c->qbytes, 0);
    /* 0..65535 fill the first send; 65536 and 70000 go alone; the small ones together. */
    ck_assert_int_eq(batches, 4);
    ck_assert_int_eq(per_batch[0], 6);
    ck_assert_int_eq(per_batch[1], 1);
    ck_assert_int_eq(per_batch[2], 1);
    ck_assert_int_eq(per_batch[3], 3);
    mr_buf_free(&wb);
}
END_TEST

/*
 * A burst (a presence event per join into a big room) grows a member's
 * queue; once written, the connection keeps no more than an idle one.
 * Before, the grown ring stayed: 512 B per member of a 5,000-member room.
 */
START_TEST(queue_shrinks_when_drained)
{
    relay_conn *c = fx_conn(&fx, "alice");
    relay_conn *idle = fx_conn(&fx, "bob");
    relay_out *o = frame_of(10, 1);
    for (int i = 0; i < 200; i++)
        relay_conn_send(c, o);
    ck_assert_uint_eq(c->qlen, 200);
    ck_assert_uint_ge(c->qcap, 200);
    mr_buf wb = MR_BUF_INIT;
    while (c->qlen)
        relay_conn_take_batch(c, &wb);
    ck_assert_uint_eq(c->qcap, idle->qcap);
    ck_assert_ptr_eq(c->q, c->q_inline);
    /* and it still queues and writes in order afterwards */
    relay_out *o2 = frame_of(5, 2);
    for (int i = 0; i < 6; i++)
        relay_conn_send(c, i % 2 ? o2 : o);
    ck_assert_uint_eq(c->qlen, 6);
    for (uint32_t i = 0; i < 6; i++)
        ck_assert_ptr_eq(relay_conn_queued(c, i), i % 2 ? o2 : o);
    while (c->qlen)
        relay_conn_take_batch(c, &wb);
    ck_assert_ptr_eq(c->q, c->q_inline);
    ck_assert_uint_eq(o->refs, 1);
    ck_assert_uint_eq(o2->refs, 1);
    relay_out_unref(o);
    relay_out_unref(o2);
    mr_buf_free(&wb);
}
END_TEST

START_TEST(slow_consumer)
{
    fx.cfg.limits.max_outbound_bytes = 1000;
    relay_conn *c = fx_conn(&fx, "alice");
    relay_out *o = frame_of(400, 1);
    relay_conn_send(c, o);
    relay_conn_send(c, o);
    ck_assert_uint_eq(c->qlen, 2);
    ck_assert_int_eq(c->close_code, 0);
    relay_conn_send(c, o); /* 1200 bytes would be queued */
    ck_assert_int_eq(c->close_code, MR_CLOSE_SLOW_CONSUMER);
    ck_assert_uint_eq(c->qlen, 0);
    ck_assert_uint_eq(c->qbytes, 0);
    relay_conn_send(c, o); /* nothing goes out after a close */
    ck_assert_uint_eq(c->qlen, 0);
    ck_assert_uint_eq(o->refs, 1);
    relay_out_unref(o);
}
END_TEST

START_TEST(bad_frames_close)
{
    fx.cfg.limits.max_bad_frames = 2;
    relay_conn *c = fx_conn(&fx, "alice");
    /* Retryable errors never count. */
    for (int i = 0; i < 5; i++)
        relay_conn_error(c, NULL, MR_ERR_RATE_LIMITED, "slow down");
    ck_assert_int_eq(c->close_code, 0);
    relay_conn_error(c, NULL, MR_ERR_BAD_FRAME, "bad");
    relay_conn_error(c, NULL, MR_ERR_BAD_FRAME, "bad");
    ck_assert_int_eq(c->close_code, 0);
    relay_conn_error(c, NULL, MR_ERR_BAD_FRAME, "bad");
    ck_assert_int_eq(c->close_code, MR_CLOSE_PROTOCOL);
    size_t n;
    char **f = fx_take(c, &n);
    ck_assert_uint_eq(n, 8); /* every error frame before the close */
    json_t *j = fx_json(f, 7);
    ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "bad_frame");
    json_decref(j);
    fx_frames_free(f);
}
END_TEST

START_TEST(find_by_id)
{
    relay_conn *cs[200];
    for (int i = 0; i < 200; i++)
        cs[i] = fx_conn(&fx, "u");
    for (int i = 0; i < 200; i++)
        ck_assert_ptr_eq(relay_conn_find(&fx.r, cs[i]->id), cs[i]);
    uint64_t gone = cs[17]->id;
    fx_close(&fx, cs[17]);
    ck_assert_ptr_null(relay_conn_find(&fx.r, gone));
    ck_assert_ptr_eq(relay_conn_find(&fx.r, cs[18]->id), cs[18]);
    ck_assert_ptr_null(relay_conn_find(&fx.r, 1000000));
    ck_assert_uint_eq(fx.r.conn_count, 199);
}
END_TEST

Suite *relay_conn_suite(void)
{
    Suite *s = suite_create("relay_conn");
    TCase *tc = tcase_create("conn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, batch_framing);
    tcase_add_test(tc, slow_consumer);
    tcase_add_test(tc, queue_shrinks_when_drained);
    tcase_add_test(tc, bad_frames_close);
    tcase_add_test(tc, find_by_id);
    suite_add_tcase(s, tc);
    return s;
}
