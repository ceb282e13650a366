/*
 * The chaos suite's counter against synthetic event logs (ctest
 * bench_chaos_count, label unit): each case plants known defects — a lost
 * message, a duplicate in history, a seq gap, a duplicate delivery within a
 * session and across a resume, a missed delivery live and after a resume —
 * and checks the counter finds exactly those, so a clean table from a real
 * run means something.
 */
#include "chaos_count.h"
#include "mr_test.h"

#include <check.h>

/* Two subscribers in room r, one publisher; m1..m3 acked and stored at seq 1..3. */
#define HEAD                                                                                       \
    "phase synthetic\n"                                                                            \
    "member s0 r\n"                                                                                \
    "member s1 r\n"                                                                                \
    "sess 0 p0 1\n"                                                                                \
    "sess 0 s0 1\n"                                                                                \
    "sess 0 s1 1\n"                                                                                \
    "join 5 s0 1 r 0 1 0\n"                                                                        \
    "join 5 s1 1 r 0 1 0\n"                                                                        \
    "pub 10 p0 r p0-1\n"                                                                           \
    "pub 20 p0 r p0-2\n"                                                                           \
    "pub 30 p0 r p0-3\n"                                                                           \
    "ack 15 p0 r p0-1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1\n"                                          \
    "ack 25 p0 r p0-2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2\n"                                          \
    "ack 35 p0 r p0-3 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3\n"

#define DELIVER_ALL                                                                                \
    "msg 16 s0 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 -1\n"                                          \
    "msg 16 s1 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 -1\n"                                          \
    "msg 26 s0 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2 -1\n"                                          \
    "msg 26 s1 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2 -1\n"                                          \
    "msg 36 s0 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3 -1\n"                                          \
    "msg 36 s1 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3 -1\n"

/* History as PostgreSQL prints it: uuids with dashes. */
#define HIST_ALL                                                                                   \
    "hist r 1 aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa1\n"                                              \
    "hist r 2 aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa2\n"                                              \
    "hist r 3 aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa3\n"

static chaos_counts count(const char *log)
{
    chaos_counts c;
    char err[128];
    ck_assert_int_eq(chaos_count_text(log, &c, err, sizeof err), 0);
    ck_assert_int_eq(c.bad_lines, 0);
    return c;
}

START_TEST(clean)
{
    chaos_counts c = count(HEAD DELIVER_ALL HIST_ALL);
    ck_assert_str_eq(c.phase, "synthetic");
    ck_assert_int_eq(c.published, 3);
    ck_assert_int_eq(c.acked, 3);
    ck_assert_int_eq(c.lost + c.hist_dups + c.seq_gaps + c.seq_reused, 0);
    ck_assert_int_eq(c.dup_session + c.dup_resume + c.dup_resume_above, 0);
    ck_assert_int_eq(c.missed_live + c.missed_resume + c.unacked + c.reconnects, 0);
    ck_assert(chaos_count_clean(&c));
    /* No fault window: every publish counts, 5 ms each. */
    ck_assert_int_eq(c.lat_n, 3);
    ck_assert(c.lat_max_ms == 5);
}
END_TEST

START_TEST(lost)
{
    /* m3 was acked, and delivered, but history never got it. */
    chaos_counts c = count(HEAD DELIVER_ALL "hist r 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1\n"
                                            "hist r 2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2\n");
    ck_assert_int_eq(c.lost, 1);
    ck_assert_int_eq(c.seq_gaps, 0);
    ck_assert_int_eq(c.missed_live + c.missed_resume, 0);
    ck_assert(!chaos_count_clean(&c));
}
END_TEST

START_TEST(history_duplicate_and_gap)
{
    /* m2 stored twice (seq 2 and 4), seq 5 missing before m3 at 6. */
    chaos_counts c = count(HEAD DELIVER_ALL "hist r 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1\n"
                                            "hist r 2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2\n"
                                            "hist r 4 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2\n"
                                            "hist r 6 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3\n");
    ck_assert_int_eq(c.lost, 0);
    ck_assert_int_eq(c.hist_dups, 1);
    /* seq 3 and 5 are missing. */
    ck_assert_int_eq(c.seq_gaps, 2);
    ck_assert_int_eq(c.seq_reused, 0);
    ck_assert(!chaos_count_clean(&c));
}
END_TEST

START_TEST(seq_reused)
{
    /* Two messages given the same seq: no gap below 3, but one seq names two messages. */
    chaos_counts c = count(HEAD DELIVER_ALL "hist r 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1\n"
                                            "hist r 2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2\n"
                                            "hist r 2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3\n");
    ck_assert_int_eq(c.seq_reused, 1);
    ck_assert_int_eq(c.hist_dups, 0);
    ck_assert_int_eq(c.seq_gaps, 0);
    ck_assert(!chaos_count_clean(&c));
}
END_TEST

START_TEST(duplicate_in_session)
{
    /* s1 gets m2 a second time on the same connection, this time as a repair with its seq. */
    chaos_counts c =
        count(HEAD DELIVER_ALL "msg 40 s1 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2 2\n"
                               "commit 41 s0 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 1\n"
                               "commit 42 s0 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 1\n" HIST_ALL);
    ck_assert_int_eq(c.dup_session, 1);
    ck_assert_int_eq(c.dup_resume + c.dup_resume_above, 0);
    ck_assert_int_eq(c.dup_commits, 1);
    ck_assert(!chaos_count_clean(&c));
}
END_TEST

START_TEST(duplicate_on_resume)
{
    /*
     * s0 knew seq 1 (m1's commit) and m2 live without its seq, lost its
     * connection, resumed with since 1, and was sent m1 (at or below since:
     * a defect) and m2 (above since: the client could not say it had it).
     */
    chaos_counts c =
        count(HEAD DELIVER_ALL "close 50 s0 1 1006\n"
                               "sess 60 s0 2\n"
                               "join 61 s0 2 r 1 1 3\n"
                               "msg 62 s0 2 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 1\n"
                               "msg 63 s0 2 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2 2\n" HIST_ALL);
    ck_assert_int_eq(c.dup_session, 0);
    ck_assert_int_eq(c.dup_resume, 1);
    ck_assert_int_eq(c.dup_resume_above, 1);
    ck_assert_int_eq(c.reconnects, 1);
    ck_assert_int_eq(c.sessions, 4);
    ck_assert(!chaos_count_clean(&c));
    /* Above `since` alone is a defect too: the resume's `have` named it. */
    c = count(HEAD DELIVER_ALL "close 50 s0 1 1006\n"
                               "sess 60 s0 2\n"
                               "join 61 s0 2 r 1 1 3\n"
                               "msg 63 s0 2 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2 2\n" HIST_ALL);
    ck_assert_int_eq(c.dup_resume, 0);
    ck_assert_int_eq(c.dup_resume_above, 1);
    ck_assert(!chaos_count_clean(&c));
}
END_TEST

START_TEST(missed)
{
    /*
     * s0 never gets m2 though connected and joined throughout (missed live);
     * s1 is disconnected while m3 is published and its resume does not
     * bring it (missed after a resume).
     */
    chaos_counts c = count(HEAD "msg 16 s0 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 -1\n"
                                "msg 16 s1 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 -1\n"
                                "msg 26 s1 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2 -1\n"
                                "close 28 s1 1 1006\n"
                                "msg 36 s0 1 r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3 -1\n"
                                "sess 40 s1 2\n"
                                "join 41 s1 2 r 2 1 3\n" HIST_ALL);
    ck_assert_int_eq(c.missed_live, 1);
    ck_assert_int_eq(c.missed_resume, 1);
    ck_assert_int_eq(c.lost, 0);
    ck_assert(!chaos_count_clean(&c));
}
END_TEST

START_TEST(stored_but_unacked_is_expected)
{
    /* m4 never acked (publisher gave up) yet stored: members must still get it. */
    chaos_counts c = count(HEAD DELIVER_ALL "pub 45 p0 r p0-4\n"
                                            "giveup p0 r p0-4\n" HIST_ALL
                                            "hist r 4 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4\n");
    ck_assert_int_eq(c.unacked, 1);
    ck_assert_int_eq(c.lost, 0);
    ck_assert_int_eq(c.missed_live + c.missed_resume, 2);
}
END_TEST

START_TEST(latency_in_window)
{
    /* Fault from 1000 to 2000 ms: three publishes inside (100, 200 and 900 ms to ack), one after.
     */
    chaos_counts c = count("phase w\n"
                           "fault 1000\n"
                           "pub 1100 p0 r p0-1\n"
                           "pub 1200 p0 r p0-2\n"
                           "pub 1300 p0 r p0-3\n"
                           "pub 2500 p0 r p0-4\n"
                           "ack 1200 p0 r p0-1 b1\n"
                           "ack 1400 p0 r p0-2 b2\n"
                           "ack 2200 p0 r p0-3 b3\n"
                           "ack 9500 p0 r p0-4 b4\n"
                           "restored 2000\n"
                           "hist r 1 b1\nhist r 2 b2\nhist r 3 b3\nhist r 4 b4\n");
    ck_assert_int_eq(c.fault_ms, 1000);
    ck_assert_int_eq(c.restored_ms, 2000);
    ck_assert_int_eq(c.lat_n, 3);
    ck_assert(c.lat_p50_ms == 200);
    ck_assert(c.lat_p99_ms == 900);
    ck_assert(c.lat_max_ms == 900);
}
END_TEST

START_TEST(unrecovered_and_bad_lines)
{
    chaos_counts c;
    char err[128];
    ck_assert_int_eq(chaos_count_text(HEAD DELIVER_ALL "join 70 s0 1 r 3 0 3\n"
                                                       "ack 80 p9 r p9-1 nosuchpublish\n"
                                                       "msg notatime s0 1 r x 1\n" HIST_ALL,
                                      &c, err, sizeof err),
                     0);
    ck_assert_int_eq(c.unrecovered, 1);
    ck_assert_int_eq(c.bad_lines, 2);
    ck_assert(!chaos_count_clean(&c));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chaos_count");
    TCase *tc = tcase_create("count");
    tcase_add_test(tc, clean);
    tcase_add_test(tc, lost);
    tcase_add_test(tc, history_duplicate_and_gap);
    tcase_add_test(tc, seq_reused);
    tcase_add_test(tc, duplicate_in_session);
    tcase_add_test(tc, duplicate_on_resume);
    tcase_add_test(tc, missed);
    tcase_add_test(tc, stored_but_unacked_is_expected);
    tcase_add_test(tc, latency_in_window);
    tcase_add_test(tc, unrecovered_and_bad_lines);
    suite_add_tcase(s, tc);
    return mr_test_run(s);
}
