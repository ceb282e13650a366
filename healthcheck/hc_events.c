/*
 * The timeline ring. Entries are fixed-size so adding one never allocates
 * and an overlong text is cut rather than lost.
 */
#include "hc_events.h"
#include "mr_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void hc_events_add(hc_events *ev, const char *kind, const char *fmt, ...)
{
    hc_event_rec *e = &ev->ring[ev->head];
    ev->head = (ev->head + 1) % HC_EVENTS_LEN;
    if (ev->n < HC_EVENTS_LEN)
        ev->n++;
    e->ts_ms = mr_wall_ms();
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(e->text, sizeof e->text, fmt, ap); /* cut if long */
    va_end(ap);
}

void hc_events_json(const hc_events *ev, mr_buf *b)
{
    mr_buf_putc(b, '[');
    for (size_t i = 0; i < ev->n; i++) {
        size_t idx = (ev->head + HC_EVENTS_LEN - ev->n + i) % HC_EVENTS_LEN;
        const hc_event_rec *e = &ev->ring[idx];
        mr_buf_printf(b, "%s{\"ts\":%lld,\"kind\":", i ? "," : "", (long long)e->ts_ms);
        mr_buf_json_str(b, e->kind, strlen(e->kind));
        mr_buf_puts(b, ",\"text\":");
        mr_buf_json_str(b, e->text, strlen(e->text));
        mr_buf_putc(b, '}');
    }
    mr_buf_putc(b, ']');
}
