/*
 * The chaos suite's counter: reads one phase's event log (written by
 * `meridian-chaos run`, or by hand in the unit test) and counts what went
 * wrong. It knows nothing of sockets or servers, so its arithmetic can be
 * checked against synthetic logs (bench/chaos/test_chaos_count.c).
 *
 * Event log: one event per line, fields separated by single spaces, times
 * in milliseconds on one monotonic clock (the load tool's). Lines starting
 * with '#' and unknown event names are ignored.
 *
 *   phase NAME
 *   fault T                      the fault is injected (SIGUSR1 to the tool)
 *   restored T                   the fault is over (SIGUSR2)
 *   member SUB ROOM              SUB is a member of ROOM for the whole phase
 *   pub T PUB ROOM MID           the application published MID (time of the call)
 *   ack T PUB ROOM MID MSG_ID    the first `ack` for MID
 *   giveup PUB ROOM MID          MID was never acknowledged
 *   sess T CLIENT SESS           `welcome` of CLIENT's session number SESS
 *   join T SUB SESS ROOM SINCE RECOVERED LAST_SEQ
 *                                a `joined` reply; SINCE is what the join sent,
 *                                RECOVERED 1, 0 or - (absent), LAST_SEQ or -1
 *   msg T SUB SESS ROOM MSG_ID SEQ      a `message` frame (SEQ -1 when absent)
 *   commit T SUB SESS ROOM MSG_ID SEQ   a `commit` frame
 *   close T CLIENT SESS CODE     the session ended (close code, 0 for a network error)
 *   hist ROOM SEQ MSG_ID         one row of the room's history (PostgreSQL)
 *
 * msg_ids are compared without dashes and case-insensitively (PostgreSQL
 * prints its uuid type with dashes, the relay sends 32 hex digits).
 */
#ifndef CHAOS_COUNT_H
#define CHAOS_COUNT_H

#include <stdint.h>
#include <stdio.h>

typedef struct chaos_counts {
    char phase[64];
    long published;  /* distinct publishes the application made */
    long acked;      /* distinct messages acknowledged to a publisher */
    long unacked;    /* publishes never acknowledged (gave up, or the log ended) */
    long lost;       /* acknowledged but not in history */
    long hist_dups;  /* history rows repeating a (room, msg_id) already there */
    long seq_gaps;   /* seqs missing from 1..max of a room's history */
    long seq_reused; /* history rows repeating a (room, seq) with another msg_id */
    /* Duplicate `message` frames for one subscriber and room: */
    long dup_session;      /* the msg_id came twice within one session */
    long dup_resume;       /* in a later session, at or below the `since` that session sent */
    long dup_resume_above; /* in a later session, above its `since` */
    long dup_commits;      /* `commit` frames repeating a msg_id within one session (info) */
    /* Messages (acknowledged or in history) a member never got as a `message`: */
    long missed_live;   /* it was connected and joined from publish to ack */
    long missed_resume; /* it was disconnected at some point in between */
    long unrecovered;   /* `joined` replies with recovered:false */
    long reconnects;    /* sessions beyond each client's first */
    long sessions;
    /* Publish (application call) to ack, for publishes made while the fault lasted. */
    long lat_n;
    double lat_p50_ms, lat_p99_ms, lat_max_ms;
    int64_t fault_ms, restored_ms; /* -1 when absent */
    long bad_lines;                /* lines that did not parse (each one is a bug of the writer) */
} chaos_counts;

/**
 * Count the events of the log in `f`. With `detail` (or NULL), write one
 * line per defect found there (what, who, which message, seq, times).
 * Returns 0, or -1 with a message in `err` when the log cannot be read at
 * all. Malformed lines are counted in bad_lines, never fatal.
 */
int chaos_count_file(FILE *f, chaos_counts *out, FILE *detail, char *err, size_t errlen);

/** The same over a log held in memory. */
int chaos_count_text(const char *text, chaos_counts *out, char *err, size_t errlen);

/** The table's header (markdown), then one row per phase. */
void chaos_count_print_header(FILE *f);
void chaos_count_print_row(FILE *f, const chaos_counts *c);

/** One JSON object with every field, on one line. */
void chaos_count_print_json(FILE *f, const chaos_counts *c);

/** True when every defect count is 0 (latency, reconnects and unacked aside). */
int chaos_count_clean(const chaos_counts *c);

#endif
