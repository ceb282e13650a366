/*
 * Token refresh without reconnecting.
 *
 * A session's token is checked once, at `hello`; when it expires the relay
 * closes with 4010 and the client must reconnect and join every room again.
 * A `refresh` frame carries a new token instead: verified like the first,
 * it must name the same user (`sub`), since everything the session holds —
 * memberships, presence, the messages it was sent — belongs to that user;
 * a token for another user is refused with `user_mismatch` and the session
 * goes on with the token it has. A valid token replaces the expiry and the
 * rooms claim; memberships the new claim no longer allows are ended by the
 * dispatcher (relay_client.c), each with an unsolicited `left`.
 *
 * Some time before the expiry (auth.refresh_hint_s, or half the token's
 * remaining life at the time it was accepted when that is shorter, so a
 * short-lived token is not hinted at once) the relay sends `refresh_due`,
 * once per token: clients that cannot tell the expiry from the token (it
 * is opaque to them) learn it here. The session timer (relay_client_timer)
 * wakes for it.
 */
#include "relay_refresh.h"
#include "mr_log.h"
#include "relay_frames.h"
#include "relay_metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int relay_refresh(relay *r, relay_conn *c, const mr_frame *f)
{
    mr_jwt_claims claims;
    mr_jwt_status st = mr_jwt_verify(&r->jwt, f->token, f->token_len, time(NULL), &claims);
    if (st != MR_JWT_OK) {
        mr_metric_inc(&relay_m.refresh_failures);
        mr_log_info("session %s (%s): refresh refused: %s", c->sid, c->ip, mr_jwt_status_str(st));
        relay_conn_error(c, f->id, MR_ERR_AUTH_FAILED, mr_jwt_status_str(st));
        return -1;
    }
    if (strcmp(claims.sub, c->user) != 0) {
        mr_metric_inc(&relay_m.refresh_failures);
        mr_log_info("session %s (%s): refresh refused: the token is for another user", c->sid,
                    c->ip);
        relay_conn_error(c, f->id, MR_ERR_USER_MISMATCH,
                         "the token is for another user: connect again to change users");
        mr_jwt_claims_free(&claims);
        return -1;
    }
    free(claims.sub);
    json_decref(c->rooms_claim);
    c->rooms_claim = claims.rooms;
    c->token_exp = claims.exp;
    c->token_at = time(NULL);
    c->refresh_hinted = false;
    mr_metric_inc(&relay_m.refreshes);
    mr_buf b = MR_BUF_INIT;
    relay_frame_refreshed(&b, f->id, c->token_exp);
    relay_conn_send_buf(c, &b);
    mr_buf_free(&b);
    return 0;
}

int64_t relay_refresh_due_at(const relay *r, const relay_conn *c)
{
    int64_t hint = r->cfg->refresh_hint_s;
    if (c->refresh_hinted || hint <= 0)
        return INT64_MAX;
    int64_t half = (c->token_exp - c->token_at) / 2;
    if (half < hint)
        hint = half > 0 ? half : 0;
    return c->token_exp - hint;
}

void relay_refresh_hint(relay *r, relay_conn *c)
{
    (void)r;
    c->refresh_hinted = true;
    mr_buf b = MR_BUF_INIT;
    relay_frame_refresh_due(&b, c->token_exp);
    relay_conn_send_buf(c, &b);
    mr_buf_free(&b);
}
