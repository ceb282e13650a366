/*
 * The backup and restore runbook (docs/operations.md, "Backup, restore and
 * rolling back"), with packaging/tools/meridian-db, on real servers: a
 * relay, nats-server with JetStream, two PostgreSQL servers and
 * meridian-control. History is written through the relay, backed up, more
 * is written, then the backup is restored into a fresh PostgreSQL, the
 * stream is replayed as the runbook says, and a client resumes from the
 * restored history: every message with the seq it had before, and new
 * messages numbered after them.
 */
#include "ctl_test_util.h"
#include "mr_test.h"
#include "mr_test_relay.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *tmp;
static mr_test_nats nats;
static mr_test_pg pg1, pg2;
static mr_test_relay relay;

static void setup(void)
{
    tmp = mr_test_tmpdir("ctl-backup");
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg1, false);
    mr_test_pg_start(&pg2, false);
    /* The relay first: it creates the region stream. */
    mr_test_relay_config(&relay, tmp, "eu-west", "relay-1", nats.url, "", "");
    mr_test_relay_start(&relay, MERIDIAN_RELAY_BIN);
}

static void teardown(void)
{
    if (relay.pid > 0)
        mr_test_stop(relay.pid, SIGTERM, 10000);
    mr_test_pg_destroy(&pg1);
    mr_test_pg_destroy(&pg2);
    mr_test_nats_stop(&nats);
}

/* meridian-db with `args`; returns its exit status and output. */
static int meridian_db(const char *args, char **out)
{
    char cmd[2048], log[700];
    snprintf(log, sizeof log, "%s/db.log", tmp);
    snprintf(cmd, sizeof cmd, "bash %s/packaging/tools/meridian-db %s > %s 2>&1",
             MERIDIAN_SOURCE_DIR, args, log);
    int st = system(cmd);
    *out = mr_test_read_file(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Every message as room:seq:msg_id, in order. */
static char *history_of(mr_test_pg *pg)
{
    char *s = mr_test_pg_value(pg, "SELECT string_agg(room || ':' || seq || ':' || msg_id, ',' "
                                   "ORDER BY room, seq) FROM messages");
    ck_assert_ptr_nonnull(s);
    return s;
}

/* Publish `n` messages into `room` and wait for the last one's commit (its seq). */
static void publish(mr_ws *ws, const char *room, int first, int n, int last_seq)
{
    for (int i = first; i < first + n; i++) {
        char mid[32], data[64];
        snprintf(mid, sizeof mid, "%s-%d", room, i);
        snprintf(data, sizeof data, "{\"n\":%d}", i);
        mr_test_publish(ws, room, mid, data);
    }
    char needle[64];
    snprintf(needle, sizeof needle, "\"seq\":%d", last_seq);
    char *f = mr_ws_expect(ws, needle, 15000);
    ck_assert_msg(f != NULL, "no commit with seq %d in %s", last_seq, room);
    free(f);
}

START_TEST(test_backup_restore_resume)
{
    const char *extra = "\"batch\":{\"max_messages\":10,\"max_wait_ms\":5},"
                        "\"consumer\":{\"ack_wait_ms\":2000}";
    ctl_proc c1;
    ctl_proc_init(&c1, nats.url, pg1.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_start(&c1, NULL);

    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    mr_test_join(&a, "lobby");
    mr_test_join(&a, "side");
    publish(&a, "lobby", 1, 10, 10);
    publish(&a, "side", 1, 5, 5);

    char file[700], args[2048], *out;
    snprintf(file, sizeof file, "%s/meridian.dump", tmp);
    snprintf(args, sizeof args, "backup '%s' %s", pg1.conninfo, file);
    ck_assert_msg(meridian_db(args, &out) == 0, "backup: %s", out);
    ck_assert_msg(strstr(out, "15 messages in history"), "%s", out);
    free(out);

    /* Written after the backup: in the stream, not in the backup. */
    publish(&a, "lobby", 11, 3, 13);
    ck_assert(ctl_test_wait_rows(&pg1, 18, 10000));
    ck_assert_int_eq(ctl_test_check_history(&pg1), 18);
    char *before = history_of(&pg1);
    ck_assert_int_eq(ctl_proc_stop(&c1), 0);

    /* Restore into a fresh server; a second restore over it is refused. */
    snprintf(args, sizeof args, "restore '%s' %s", pg2.conninfo, file);
    ck_assert_msg(meridian_db(args, &out) == 0, "restore: %s", out);
    ck_assert_msg(strstr(out, "15 messages in history"), "%s", out);
    free(out);
    ck_assert_int_eq(meridian_db(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "not empty"));
    free(out);
    ck_assert_int_eq(ctl_test_check_history(&pg2), 15);

    /* The runbook's replay: remove the durable consumer; control recreates it from the
     * stream's start, finds the restored identities and stores what came after. */
    natsConnection *nc = ctl_test_nats(nats.url);
    jsCtx *js = NULL;
    ck_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    ck_assert(js_DeleteConsumer(js, "MERIDIAN_EU_WEST", "meridian-control", NULL, NULL) == NATS_OK);
    ctl_proc c2;
    ctl_proc_init(&c2, nats.url, pg2.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_start(&c2, NULL);
    ck_assert(ctl_test_wait_rows(&pg2, 18, 15000));
    ck_assert_int_eq(ctl_test_check_history(&pg2), 18);
    char *after = history_of(&pg2);
    ck_assert_str_eq(after, before); /* the same messages with the same seqs */

    /* A client resumes from the restored history. */
    mr_ws b;
    mr_test_hello(&b, &relay, "bob", NULL);
    ck_assert_int_eq(
        mr_ws_send_text(&b, "{\"type\":\"join\",\"id\":2,\"room\":\"lobby\",\"since\":5}"), 0);
    char *joined = mr_ws_expect(&b, "\"type\":\"joined\"", 10000);
    ck_assert_ptr_nonnull(joined);
    ck_assert_msg(strstr(joined, "\"recovered\":true") && strstr(joined, "\"last_seq\":13"), "%s",
                  joined);
    free(joined);
    for (int seq = 6; seq <= 13; seq++) {
        char *m = mr_test_next_message(&b, 10000);
        ck_assert_ptr_nonnull(m);
        json_t *o = json_loads(m, 0, NULL);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), seq);
        char mid[32];
        snprintf(mid, sizeof mid, "lobby-%d", seq);
        ck_assert_str_eq(json_string_value(json_object_get(o, "mid")), mid);
        json_decref(o);
        free(m);
    }
    /* New messages continue the restored counters. */
    publish(&a, "lobby", 14, 1, 14);
    ck_assert(ctl_test_wait_rows(&pg2, 19, 10000));
    ck_assert_int_eq(ctl_test_check_history(&pg2), 19);

    mr_ws_close(&a);
    mr_ws_close(&b);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(before);
    free(after);
    ck_assert_int_eq(ctl_proc_stop(&c2), 0);
    ctl_proc_free(&c1);
    ctl_proc_free(&c2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_backup");
    TCase *tc = mr_test_case(s, "backup", setup, teardown, 150);
    tcase_add_test(tc, test_backup_restore_resume);
    return mr_test_run(s);
}
