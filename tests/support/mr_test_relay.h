/*
 * Test support for suites that run real relays: config files, processes,
 * tokens, and a few protocol steps on top of the raw WebSocket client.
 */
#ifndef MR_TEST_RELAY_H
#define MR_TEST_RELAY_H

#include "mr_test.h"

#include <stdbool.h>

#define MR_TEST_SECRET "integration-test-secret-0123456789"

typedef struct mr_test_relay {
    pid_t pid;
    int port, admin_port;
    char cfg[600], log[600];
} mr_test_relay;

/**
 * Write a relay config into `dir`: region, node id, the NATS URL (or a whole
 * `nats` JSON value, as mr_test_nats_json() makes for locked servers), the test
 * secret, and `limits` / `extra` JSON members spliced into "limits" and the
 * top level (either may be ""). max_connections_per_ip defaults to 0.
 */
void mr_test_relay_config(mr_test_relay *rp, const char *dir, const char *region, const char *node,
                          const char *nats_url, const char *limits, const char *extra);
/** Start the relay binary and wait until it listens and /readyz is 200. */
void mr_test_relay_start(mr_test_relay *rp, const char *binary);
/** Poll /readyz until it answers `status` (aborts the test after `timeout_ms`). */
void mr_test_relay_wait_ready(mr_test_relay *rp, int status, int timeout_ms);
/** SIGINT (clean stop) and assert exit status 0: under ASan that also means no leak. */
void mr_test_relay_stop_clean(mr_test_relay *rp);
/** The value of an unlabelled metric on the relay's /metrics, or -1. */
long mr_test_relay_metric(mr_test_relay *rp, const char *name);

/** A token for `user` signed with the test secret; `rooms` is a JSON array or NULL. */
char *mr_test_token(const char *user, long exp_offset_s, const char *rooms);
/** Connect, hello as `user`, wait for welcome. */
void mr_test_hello(mr_ws *ws, mr_test_relay *rp, const char *user, const char *rooms);
/** Join `room` and wait for joined. */
void mr_test_join(mr_ws *ws, const char *room);
/** Send a publish frame (id = mid). */
void mr_test_publish(mr_ws *ws, const char *room, const char *mid, const char *data_json);
/** Wait for a frame containing `needle`; aborts the test when none comes within 5 s. */
void mr_test_expect(mr_ws *ws, const char *needle);
/** The next `message` frame (other frames are skipped), or NULL after `timeout_ms`. */
char *mr_test_next_message(mr_ws *ws, int timeout_ms);

#endif
