/*
 * Integration: who configures a region stream, against a real nats-server
 * (JetStream) and PostgreSQL started here.
 *
 * The region's relays create the stream and own its configuration
 * (mr_stream_ensure). The control plane only reads it: it never creates,
 * updates or otherwise changes a stream; its own `stream.*` settings, when
 * given, are expectations, and a stream that differs is refused loudly
 * (an error in the log, /readyz 503 saying why) instead of being rewritten.
 */
#include "ctl_test_util.h"
#include "mr_stream.h"
#include "mr_test.h"
#include "mr_test_pg.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WEEK_S (7 * 24 * 3600)

static mr_test_nats nats;
static mr_test_pg pg;
static natsConnection *nc;
static jsCtx *js;
static ctl_proc ctl;

static void setup(void)
{
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    nc = ctl_test_nats(nats.url);
    ck_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
}

static void teardown(void)
{
    if (ctl.pid > 0)
        ck_assert_int_eq(ctl_proc_stop(&ctl), 0);
    ctl_proc_free(&ctl);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

/* The live stream's configuration, or NULL when it does not exist. */
static jsStreamInfo *stream_info(const char *region)
{
    char name[MR_STREAM_NAME_MAX];
    mr_stream_name(region, name, sizeof name);
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, js, name, NULL, NULL) != NATS_OK)
        return NULL;
    return si;
}

static void assert_limits(const char *region, int64_t max_age_s, int64_t dup_window_s)
{
    jsStreamInfo *si = stream_info(region);
    ck_assert_msg(si != NULL, "stream of %s missing", region);
    ck_assert_int_eq(si->Config->MaxAge, max_age_s * 1000000000LL);
    ck_assert_int_eq(si->Config->Duplicates, dup_window_s * 1000000000LL);
    jsStreamInfo_Destroy(si);
}

static bool wait_rows(int64_t want, int timeout_ms)
{
    return ctl_test_wait_rows(&pg, want, timeout_ms);
}

/*
 * A relay made the stream with a week's retention; a control plane that
 * says one hour must not cut it to one hour: it refuses, says why, and
 * leaves the stream as it is.
 */
START_TEST(test_disagreeing_control_refuses_and_changes_nothing)
{
    ctl_test_stream(js, "eu-west", NULL); /* the relay's defaults: 7 days, 120 s window */
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"stream\":{\"max_age_s\":3600,\"duplicate_window_s\":60}");
    ctl_proc_spawn(&ctl, NULL);
    int st = ctl_proc_wait_readyz(&ctl, "\"stream\":\"mismatch\"", 20000);
    ck_assert_msg(st == 503, "/readyz %d; see %s", st, ctl.log);
    ck_assert_msg(ctl_proc_log_has(&ctl, "max_age 604800 s (configured 3600 s)"),
                  "the log does not say what differs; see %s", ctl.log);
    ck_assert(ctl_proc_log_has(&ctl, "duplicate_window 120 s (configured 60 s)"));
    /* Still refusing a while later, and the stream is untouched. */
    ck_assert_int_eq(ctl_proc_wait_readyz(&ctl, "\"stream\":\"mismatch\"", 5000), 503);
    assert_limits("eu-west", WEEK_S, 120);
    /* The durable consumer was not created either: nothing is persisted from that stream. */
    char name[MR_STREAM_NAME_MAX];
    mr_stream_name("eu-west", name, sizeof name);
    jsConsumerInfo *ci = NULL;
    ck_assert(js_GetConsumerInfo(&ci, js, name, "meridian-control", NULL, NULL) != NATS_OK);
}
END_TEST

/* Settings that agree (and settings left out) are fine: control persists the stream as it is. */
START_TEST(test_agreeing_or_silent_control_persists)
{
    mr_stream_config sc;
    mr_stream_config_init(&sc);
    sc.max_age_s = 3600;
    sc.duplicate_window_s = 60;
    ctl_test_stream(js, "eu-west", &sc);
    ctl_test_stream(js, "us-east", &sc);
    /* eu-west: configured to agree; us-east: no expectation for what control does not set. */
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\",\"us-east\"]",
                  "\"stream\":{\"max_age_s\":3600}");
    ctl_proc_start(&ctl, NULL);
    char id[33];
    ck_assert(ctl_test_publish(js, "eu-west", "r", "u", "1", 1764300000000, true, id) == 0);
    ck_assert(ctl_test_publish(js, "us-east", "r", "u", "2", 1764300000001, true, id) == 0);
    ck_assert(wait_rows(2, 15000));
    assert_limits("eu-west", 3600, 60);
    assert_limits("us-east", 3600, 60);
}
END_TEST

/*
 * A control plane started before the region's relays waits for them to
 * create the stream (it never creates one itself, so the stream gets the
 * relays' settings and placement), then persists it.
 */
START_TEST(test_control_never_creates_the_stream)
{
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"stream\":{\"max_age_s\":3600}");
    ctl_proc_spawn(&ctl, NULL);
    /* Ready: nothing to persist yet is no fault. */
    ck_assert_msg(ctl_proc_wait_ready(&ctl, 20000), "not ready; see %s", ctl.log);
    ck_assert_int_eq(ctl_proc_wait_readyz(&ctl, "\"stream\":\"absent\"", 5000), 200);
    ck_assert_ptr_null(stream_info("eu-west"));
    /* The relay comes: its week of retention stays; control refuses to persist with its hour. */
    ctl_test_stream(js, "eu-west", NULL);
    ck_assert_int_eq(ctl_proc_wait_readyz(&ctl, "\"stream\":\"mismatch\"", 20000), 503);
    assert_limits("eu-west", WEEK_S, 120);
    ck_assert_int_eq(ctl_proc_stop(&ctl), 0);
    ctl_proc_free(&ctl);
    /* Without the disagreeing setting the same control plane persists it. */
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", NULL);
    ctl_proc_start(&ctl, NULL);
    char id[33];
    ck_assert(ctl_test_publish(js, "eu-west", "r", "u", "1", 1764300000000, true, id) == 0);
    ck_assert(wait_rows(1, 15000));
    assert_limits("eu-west", WEEK_S, 120);
}
END_TEST

/* The owner (a relay, through mr_stream_ensure) applies its own configuration. */
START_TEST(test_owner_updates_the_stream)
{
    ctl_test_stream(js, "eu-west", NULL);
    mr_stream_config sc;
    mr_stream_config_init(&sc);
    sc.max_age_s = 3600;
    ctl_test_stream(js, "eu-west", &sc);
    assert_limits("eu-west", 3600, 120);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_stream");
    TCase *tc = mr_test_case(s, "refuse", setup, teardown, 90);
    tcase_add_test(tc, test_disagreeing_control_refuses_and_changes_nothing);
    tc = mr_test_case(s, "agree", setup, teardown, 90);
    tcase_add_test(tc, test_agreeing_or_silent_control_persists);
    tc = mr_test_case(s, "absent", setup, teardown, 90);
    tcase_add_test(tc, test_control_never_creates_the_stream);
    tc = mr_test_case(s, "owner", setup, teardown, 60);
    tcase_add_test(tc, test_owner_updates_the_stream);
    return mr_test_run(s);
}
