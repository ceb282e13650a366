/*
 * The agent's timeline: transitions, decisions, DNS writes, lease changes and
 * errors, newest last, in a fixed ring (the dashboard shows it).
 */
#ifndef HC_EVENTS_H
#define HC_EVENTS_H

#include "mr_buf.h"

#include <stddef.h>
#include <stdint.h>

#define HC_EVENTS_LEN 200 /* timeline entries kept */

typedef struct hc_event_rec {
    int64_t ts_ms; /* wall clock, for display */
    char kind[16];
    char text[240];
} hc_event_rec;

typedef struct hc_events {
    hc_event_rec ring[HC_EVENTS_LEN];
    size_t n, head;
} hc_events;

/** Append an entry (the oldest is dropped when the ring is full). */
void hc_events_add(hc_events *ev, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Append the timeline as a JSON array of {ts, kind, text}, oldest first. */
void hc_events_json(const hc_events *ev, mr_buf *out);

#endif
