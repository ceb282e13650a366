/*
 * Per-endpoint health state machine. Probe results go in one at a time; the
 * machine answers whether the endpoint is up, down or not yet known, and
 * whether the last result changed that.
 */
#ifndef HC_FSM_H
#define HC_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { HC_STATE_UNKNOWN = 0, HC_STATE_UP, HC_STATE_DOWN } hc_state;

typedef struct hc_fsm_conf {
    int down_window;   /* results looked at when deciding to go down (1..32) */
    int down_failures; /* failures within that window that take an up endpoint down */
    int up_successes;  /* consecutive successes that bring a down endpoint back */
} hc_fsm_conf;

/* Defaults: with a 500 ms probe interval, about 1.5 s to go down, 4 s to come back. */
#define HC_FSM_CONF_DEFAULT                                                                        \
    {                                                                                              \
        .down_window = 6, .down_failures = 3, .up_successes = 8                                    \
    }

typedef struct hc_fsm {
    hc_fsm_conf conf;
    hc_state state;
    uint32_t history; /* bit 0 = latest result, 1 = failure */
    int nresults;     /* results seen, saturating at 32 */
    int streak_ok;    /* consecutive successes */
    int streak_fail;  /* consecutive failures */
    int64_t since_ms; /* wall time of the last transition */
} hc_fsm;

/** Check a configuration; returns 0 or -1 with a message in err. */
int hc_fsm_conf_check(const hc_fsm_conf *c, char *err, size_t errlen);
void hc_fsm_init(hc_fsm *f, const hc_fsm_conf *c);
/** Feed one probe result at wall time now_ms; returns true when the state changed. */
bool hc_fsm_feed(hc_fsm *f, bool ok, int64_t now_ms);
/** Failures among the last down_window results. */
int hc_fsm_recent_failures(const hc_fsm *f);
const char *hc_state_name(hc_state s);
/** The one-character wire form of a state in observations: 'u', 'd' or '?'. */
char hc_state_char(hc_state s);
/** The state a wire character stands for (anything unknown is UNKNOWN). */
hc_state hc_state_from_char(char c);

#endif
