/*
 * A stand-in for relay/relay_nats.c in unit tests: the relay's modules link
 * against it instead of libnats's connection (the test executable lists
 * fake_nats.c before librelay_core.a, so the real relay_nats.o is never
 * pulled in). It records requests and publishes for the test to read.
 */
#ifndef FAKE_NATS_H
#define FAKE_NATS_H

#include "relay_nats.h"

#include <stdbool.h>
#include <stdlib.h>

/*
 * The fixture's own assertions: Check's in the unit tests, abort() in the
 * fuzz targets (tests/fuzz), which link the fixture without a test runner
 * (Check's asserts exit when no test is running).
 */
#ifdef FX_NO_CHECK
#define FX_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)
#else
#include <check.h>
#define FX_ASSERT(cond, ...) ck_assert_msg(cond, __VA_ARGS__)
#endif

#define FAKE_NATS_MAX 64

typedef struct fake_nats_call {
    char subject[256];
    char reply[256]; /* requests and JetStream publishes: the inbox token; core publishes: the
                        msg_id; raw publishes: the reply subject or "" */
    char msg_id[64]; /* publishes: the Nats-Msg-Id header, if any */
    char body[2048];
} fake_nats_call;

typedef struct fake_nats_log {
    bool connected; /* what relay_nats_connected answers (default true) */
    int requests, publishes;
    fake_nats_call request[FAKE_NATS_MAX]; /* relay_nats_request */
    fake_nats_call publish[FAKE_NATS_MAX]; /* relay_nats_publish and relay_nats_publish_raw */
} fake_nats_log;

extern fake_nats_log fake_nats;

/** Forget what was recorded; connected again. */
void fake_nats_reset(void);
/** The last request recorded (ck-asserts that there is one). */
const fake_nats_call *fake_nats_last_request(void);
/** The last publish recorded (ck-asserts that there is one). */
const fake_nats_call *fake_nats_last_publish(void);
/**
 * Queue a message on `subject` with `data` for relay_nats_take (the test
 * then calls relay_inbound_take). A subject starting with "_INBOX.fake."
 * is a reply on the relay's inbox.
 */
void fake_nats_deliver(const char *subject, const char *data);

#endif
