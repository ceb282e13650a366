/*
 * The majority lease state machine (see hc_lease.h and docs/healthcheck.md).
 *
 * Every agent is both a member (it votes) and a candidate (it asks for
 * votes). The rules that make two simultaneous holders impossible:
 *
 *   - A member grants a request only when it has no running promise to
 *     another candidate, is not in its quiet period after a start, the
 *     request's term is not below the term it last voted in, and it has
 *     not voted for someone else in that very term. Granting records the
 *     vote (persisted before the reply leaves) and a promise that runs for
 *     ttl from now, the moment the member saw the request.
 *   - A candidate counts only grants of its current round (same term, same
 *     sequence number) and holds the lease from the moment a majority of
 *     members granted that round until round_sent + ttl - margin, where
 *     round_sent is read before the request is handed to the network. Every
 *     member of that majority saw the request after it was sent, so each
 *     promise outlives the lease by at least the margin (which absorbs the
 *     clocks' rate difference over one ttl).
 *   - Any other candidate needs a majority too, which shares a member with
 *     the holder's majority; that member refuses it until its promise ends,
 *     and by then the holder's lease has ended.
 *   - A candidate's own vote is a promise to itself. While its round is
 *     open it votes for nobody else, unless it gives the round up for good
 *     (yields: to a higher term, or to a lower id in the same term, which
 *     breaks the tie of two agents that noticed a dead holder at the same
 *     moment); a round given up is never counted, so its self-vote can go
 *     to the other candidate without two holders of one term, and its term
 *     and vote return to what they were before the candidacy.
 *
 * Terms only grow: a candidate takes one above every term it heard of, and
 * a member never grants a term below the one it voted in. Two holders of
 * the same term are impossible (one vote per member per term), so the term
 * is a fencing token the DNS writes carry.
 */
#include "hc_lease.h"

#include <stdio.h>
#include <string.h>

static int member_index(const hc_lease *l, const char *id)
{
    for (size_t i = 0; i < l->n_members; i++)
        if (strcmp(l->members[i], id) == 0)
            return (int)i;
    return -1;
}

static bool valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n < HC_LEASE_ID_MAX;
}

int hc_lease_init(hc_lease *l, const hc_lease_conf *c, uint64_t term, const char *voted_for,
                  int64_t now_us)
{
    memset(l, 0, sizeof *l);
    if (!valid_id(c->self) || c->n_members == 0 || c->n_members > HC_LEASE_MAX_MEMBERS ||
        c->ttl_us <= 0 || c->margin_us < 0 || c->margin_us >= c->ttl_us || c->renew_us <= 0 ||
        c->round_us <= 0)
        return -1;
    snprintf(l->self, sizeof l->self, "%s", c->self);
    for (size_t i = 0; i < c->n_members; i++) {
        if (!valid_id(c->members[i]))
            return -1;
        snprintf(l->members[i], sizeof l->members[i], "%s", c->members[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->members[j], l->members[i]) == 0)
                return -1;
    }
    l->n_members = c->n_members;
    if (member_index(l, l->self) < 0)
        return -1;
    l->ttl_us = c->ttl_us;
    l->margin_us = c->margin_us;
    l->renew_us = c->renew_us;
    l->round_us = c->round_us;
    l->term = term;
    l->max_seen = term;
    if (voted_for && valid_id(voted_for))
        snprintf(l->voted_for, sizeof l->voted_for, "%s", voted_for);
    /* Promises made before the restart were not persisted: honour them all
     * by granting nothing until the longest of them has run out. */
    l->quiet_until_us = now_us + l->ttl_us;
    l->next_round_us = l->quiet_until_us;
    return 0;
}

size_t hc_lease_majority(const hc_lease *l)
{
    return l->n_members / 2 + 1;
}

bool hc_lease_held(const hc_lease *l, int64_t now_us)
{
    return l->held_term != 0 && now_us < l->held_until_us;
}

int64_t hc_lease_left_us(const hc_lease *l, int64_t now_us)
{
    return hc_lease_held(l, now_us) ? l->held_until_us - now_us : 0;
}

uint64_t hc_lease_term(const hc_lease *l, int64_t now_us)
{
    return hc_lease_held(l, now_us) ? l->held_term : 0;
}

const char *hc_lease_promised(const hc_lease *l, int64_t now_us)
{
    return l->promise_to[0] && now_us < l->promise_until_us ? l->promise_to : "";
}

static hc_lease_msg *push(hc_lease_out *out, hc_lease_msg_type type, const hc_lease *l)
{
    if (out->n == sizeof out->msg / sizeof *out->msg)
        return NULL; /* cannot happen: no step emits more than two */
    hc_lease_msg *m = &out->msg[out->n++];
    memset(m, 0, sizeof *m);
    m->type = type;
    snprintf(m->from, sizeof m->from, "%s", l->self);
    return m;
}

static void vote(hc_lease *l, uint64_t term, const char *cand, hc_lease_out *out)
{
    if (term != l->term || strcmp(l->voted_for, cand) != 0) {
        l->term = term;
        snprintf(l->voted_for, sizeof l->voted_for, "%s", cand);
        out->persist = true;
    }
    if (term > l->max_seen)
        l->max_seen = term;
}

static size_t count(const bool *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += v[i];
    return k;
}

/* Give the open round up for good: none of its grants will ever count. A
 * candidate that does not hold drops its promise to itself with it, and its
 * vote for itself in that term: the term is abandoned (this agent never
 * counts a round of it again), so the vote may go to another candidate
 * without two holders of one term. */
static void give_up_round(hc_lease *l, int64_t now_us, hc_lease_out *out)
{
    l->round_open = false;
    if (hc_lease_held(l, now_us))
        return;
    if (strcmp(l->promise_to, l->self) == 0)
        l->promise_until_us = 0;
    /* The members that granted this round promised us for a whole TTL, for
     * a round we will never count: let them go at once, or several failed
     * candidates could keep every member promised to one of them (a split
     * vote that lasts). Safe for the same reason as the release on
     * shutdown: we do not hold. */
    hc_lease_msg *rel = push(out, HC_LEASE_RELEASE, l);
    if (rel)
        rel->term = l->round_term;
    /* A term this agent once held stays voted: fencing tokens are unique.
     * Otherwise the candidacy is undone: the term and vote go back to what
     * they were before it, as if it never happened. Keeping the abandoned
     * term would make this member refuse the holder's renewals (their term
     * is lower), and a failed candidate could unseat a live holder. */
    if (l->term == l->round_term && l->round_term != l->last_held_term &&
        strcmp(l->voted_for, l->self) == 0) {
        l->term = l->term_before;
        snprintf(l->voted_for, sizeof l->voted_for, "%s", l->voted_before);
        out->persist = true;
    }
}

/* Up to half a round of delay, different for each member and term, so
 * candidates that failed together do not start again together. */
static int64_t jitter(const hc_lease *l)
{
    uint64_t h = 1469598103934665603ULL ^ l->round_term;
    for (const char *c = l->self; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return (int64_t)(h % (uint64_t)(l->round_us / 2 + 1));
}

static void win(hc_lease *l, int64_t now_us)
{
    if (!hc_lease_held(l, now_us) || l->held_term != l->round_term)
        l->held_since_us = now_us;
    l->held_term = l->round_term;
    l->last_held_term = l->round_term;
    int64_t until = l->round_sent_us + l->ttl_us - l->margin_us;
    if (until > l->held_until_us)
        l->held_until_us = until;
    /* Our own promise to ourselves covers the whole lease. */
    if (l->round_sent_us + l->ttl_us > l->promise_until_us)
        l->promise_until_us = l->round_sent_us + l->ttl_us;
    l->round_open = false;
    l->next_round_us = l->round_sent_us + l->renew_us;
}

static void start_round(hc_lease *l, uint64_t term, int64_t now_us, hc_lease_out *out)
{
    if (term != l->term) {
        l->term_before = l->term;
        memcpy(l->voted_before, l->voted_for, sizeof l->voted_before);
    }
    vote(l, term, l->self, out);
    snprintf(l->promise_to, sizeof l->promise_to, "%s", l->self);
    if (now_us + l->ttl_us > l->promise_until_us)
        l->promise_until_us = now_us + l->ttl_us;
    l->promise_term = term;
    l->round_open = true;
    l->round_term = term;
    l->round_seq = ++l->seq;
    l->round_sent_us = now_us;
    l->round_wait_us = 0;
    memset(l->granted, 0, sizeof l->granted);
    memset(l->refused, 0, sizeof l->refused);
    l->granted[member_index(l, l->self)] = true;
    if (count(l->granted, l->n_members) >= hc_lease_majority(l)) {
        win(l, now_us); /* a single member is its own majority */
        return;
    }
    hc_lease_msg *m = push(out, HC_LEASE_REQ, l);
    if (m) {
        m->term = term;
        m->seq = l->round_seq;
    }
}

void hc_lease_tick(hc_lease *l, int64_t now_us, hc_lease_out *out)
{
    if (l->held_term && now_us >= l->held_until_us)
        l->held_term = 0;
    if (l->round_open && now_us - l->round_sent_us >= l->round_us) {
        /* A holder retries its renewal at once; a candidate that heard from
         * no majority (cut off, most likely) waits a round before the next
         * term, so an isolated agent does not spin through terms. */
        bool held = hc_lease_held(l, now_us);
        give_up_round(l, now_us, out);
        l->next_round_us = held ? now_us : now_us + l->round_us + jitter(l);
    }
    if (l->round_open || now_us < l->next_round_us)
        return;
    if (hc_lease_held(l, now_us)) {
        start_round(l, l->held_term, now_us, out); /* renewal: same term */
        return;
    }
    /* An election: only when our own vote is free (not in the quiet period,
     * no running promise to another candidate). */
    if (now_us < l->quiet_until_us)
        return;
    if (hc_lease_promised(l, now_us)[0] && strcmp(l->promise_to, l->self) != 0)
        return;
    uint64_t t = (l->max_seen > l->term ? l->max_seen : l->term) + 1;
    start_round(l, t, now_us, out);
}

static void on_request(hc_lease *l, const hc_lease_msg *m, int64_t now_us, hc_lease_out *out)
{
    bool held = hc_lease_held(l, now_us);
    /* Yield our own open election to a higher term, or to a lower id in the
     * same term (both noticed a dead holder at once: one must win now). */
    if (l->round_open && !held &&
        (m->term > l->round_term || (m->term == l->round_term && strcmp(m->from, l->self) < 0)))
        give_up_round(l, now_us, out);
    int64_t wait = 0;
    bool grant;
    const char *promised = hc_lease_promised(l, now_us);
    if (now_us < l->quiet_until_us) {
        grant = false;
        wait = l->quiet_until_us - now_us;
    } else if (promised[0] && strcmp(promised, m->from) != 0) {
        grant = false;
        wait = l->promise_until_us - now_us;
    } else if (m->term < l->term ||
               (m->term == l->term && l->voted_for[0] && strcmp(l->voted_for, m->from) != 0)) {
        grant = false; /* a stale term, or this term's vote is another's */
    } else {
        grant = true;
    }
    if (grant) {
        vote(l, m->term, m->from, out);
        if (strcmp(l->promise_to, m->from) != 0 || now_us + l->ttl_us > l->promise_until_us) {
            snprintf(l->promise_to, sizeof l->promise_to, "%s", m->from);
            l->promise_until_us = now_us + l->ttl_us;
        }
        l->promise_term = m->term;
    }
    hc_lease_msg *r = push(out, HC_LEASE_VOTE, l);
    if (!r)
        return;
    snprintf(r->to, sizeof r->to, "%s", m->from);
    r->term = m->term;
    r->seq = m->seq;
    r->granted = grant;
    r->seen = l->term;
    r->wait_ms = (wait + 999) / 1000;
}

static void on_vote(hc_lease *l, const hc_lease_msg *m, int idx, int64_t now_us, hc_lease_out *out)
{
    if (m->seen > l->max_seen)
        l->max_seen = m->seen;
    if (strcmp(m->to, l->self) != 0 || !l->round_open || m->term != l->round_term ||
        m->seq != l->round_seq)
        return; /* another round's, or not ours: a late or repeated reply counts for nothing */
    if (m->granted) {
        l->granted[idx] = true;
        if (count(l->granted, l->n_members) >= hc_lease_majority(l))
            win(l, now_us);
        return;
    }
    l->refused[idx] = true;
    int64_t w = m->wait_ms > 0 ? m->wait_ms * 1000 : 0;
    if (w && (!l->round_wait_us || w < l->round_wait_us))
        l->round_wait_us = w;
    /* Once a majority can no longer be reached, give up now and try again
     * when the shortest promise that stood in the way has run out. */
    if (l->n_members - count(l->refused, l->n_members) < hc_lease_majority(l)) {
        give_up_round(l, now_us, out);
        int64_t retry = l->round_wait_us ? l->round_wait_us : l->round_us;
        if (retry > l->renew_us)
            retry = l->renew_us;
        l->next_round_us = now_us + retry + jitter(l);
    }
}

void hc_lease_receive(hc_lease *l, const hc_lease_msg *m, int64_t now_us, hc_lease_out *out)
{
    if (l->held_term && now_us >= l->held_until_us)
        l->held_term = 0;
    int idx = member_index(l, m->from);
    if (idx < 0 || strcmp(m->from, l->self) == 0 || m->term == 0)
        return;
    if (m->term > l->max_seen)
        l->max_seen = m->term;
    switch (m->type) {
    case HC_LEASE_REQ:
        on_request(l, m, now_us, out);
        break;
    case HC_LEASE_VOTE:
        on_vote(l, m, idx, now_us, out);
        break;
    case HC_LEASE_RELEASE:
        /* Only the candidate itself benefits from our promise: once it says
         * it does not hold and gave that term up, nothing is left to
         * protect. A release older than our promise (a later round of the
         * same candidate) changes nothing. */
        if (strcmp(l->promise_to, m->from) == 0 && m->term >= l->promise_term)
            l->promise_until_us = 0;
        break;
    }
}

void hc_lease_release(hc_lease *l, int64_t now_us, hc_lease_out *out)
{
    bool held = hc_lease_held(l, now_us);
    uint64_t term = l->held_term;
    l->held_term = 0;
    l->round_open = false;
    if (strcmp(l->promise_to, l->self) == 0)
        l->promise_until_us = 0;
    /* Never take it again in this process: release is for shutting down. */
    l->next_round_us = INT64_MAX;
    if (!held)
        return;
    hc_lease_msg *m = push(out, HC_LEASE_RELEASE, l);
    if (m)
        m->term = term;
}
