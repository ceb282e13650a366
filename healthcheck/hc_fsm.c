/*
 * Per-endpoint health state machine.
 *
 * Going down and coming back use different rules on purpose. Going down
 * counts failures in a sliding window of the last `down_window` results, so
 * intermittent failures (fail, ok, fail, ok, fail) add up and take the
 * endpoint down, while one lost probe (a blip) does not. Coming back needs
 * `up_successes` consecutive successes, a longer and stricter test, so an
 * endpoint that flickers stays down instead of flapping DNS.
 *
 * A new endpoint starts UNKNOWN: its first success makes it UP (an agent that
 * restarts must not hold a healthy region out of DNS for the whole "come
 * back" period), and `down_failures` consecutive failures make it DOWN.
 */
#include "hc_fsm.h"

#include <stdio.h>

int hc_fsm_conf_check(const hc_fsm_conf *c, char *err, size_t errlen)
{
    if (c->down_window < 1 || c->down_window > 32) {
        snprintf(err, errlen, "down_window must be 1..32");
        return -1;
    }
    if (c->down_failures < 1 || c->down_failures > c->down_window) {
        snprintf(err, errlen, "down_failures must be 1..down_window");
        return -1;
    }
    if (c->up_successes < 1 || c->up_successes > 1000) {
        snprintf(err, errlen, "up_successes must be 1..1000");
        return -1;
    }
    return 0;
}

void hc_fsm_init(hc_fsm *f, const hc_fsm_conf *c)
{
    *f = (hc_fsm){.conf = *c, .state = HC_STATE_UNKNOWN};
}

int hc_fsm_recent_failures(const hc_fsm *f)
{
    int n = f->nresults < f->conf.down_window ? f->nresults : f->conf.down_window;
    uint32_t mask = n >= 32 ? 0xffffffffu : ((1u << n) - 1);
    return __builtin_popcount(f->history & mask);
}

bool hc_fsm_feed(hc_fsm *f, bool ok, int64_t now_ms)
{
    f->history = (f->history << 1) | (ok ? 0u : 1u);
    if (f->nresults < 32)
        f->nresults++;
    if (ok) {
        f->streak_ok++;
        f->streak_fail = 0;
    } else {
        f->streak_fail++;
        f->streak_ok = 0;
    }
    hc_state next = f->state;
    switch (f->state) {
    case HC_STATE_UNKNOWN:
        if (ok)
            next = HC_STATE_UP;
        else if (f->streak_fail >= f->conf.down_failures)
            next = HC_STATE_DOWN;
        break;
    case HC_STATE_UP:
        if (!ok && hc_fsm_recent_failures(f) >= f->conf.down_failures)
            next = HC_STATE_DOWN;
        break;
    case HC_STATE_DOWN:
        if (f->streak_ok >= f->conf.up_successes)
            next = HC_STATE_UP;
        break;
    }
    if (next == f->state)
        return false;
    f->state = next;
    f->since_ms = now_ms;
    /* Start the next decision from a clean window: failures that took the
     * endpoint down must not count again right after it comes back. */
    f->history = 0;
    f->nresults = 0;
    return true;
}

const char *hc_state_name(hc_state s)
{
    switch (s) {
    case HC_STATE_UP:
        return "up";
    case HC_STATE_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

char hc_state_char(hc_state s)
{
    switch (s) {
    case HC_STATE_UP:
        return 'u';
    case HC_STATE_DOWN:
        return 'd';
    default:
        return '?';
    }
}

hc_state hc_state_from_char(char c)
{
    return c == 'u' ? HC_STATE_UP : c == 'd' ? HC_STATE_DOWN : HC_STATE_UNKNOWN;
}
