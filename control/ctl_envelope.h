/*
 * Stream messages as the control plane accepts them: the subject names the
 * region and room, the payload is the client-facing `message` frame (see
 * docs/control.md, "Messages on the stream"). Pure functions, no NATS and
 * no database, so that they can be unit-tested and fuzzed on their own.
 */
#ifndef CTL_ENVELOPE_H
#define CTL_ENVELOPE_H

#include "mr_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A validated message, ready to be stored. */
typedef struct ctl_envelope {
    char room[MR_ROOM_MAX + 1];
    char msg_id[MR_MSG_ID_LEN + 1];
    int64_t ts_ms; /* the publisher's "ts" when it is an integer, else 0 */
    char *env;     /* malloc'd JSON object without "seq", ending with '}' */
} ctl_envelope;

/**
 * The room of a stream subject "meridian.msg.<region>.<room>". Returns 0
 * with `*room` pointing into `subject`, or -1 with `why` set when the
 * subject is of another region or the room name is invalid.
 */
int ctl_envelope_subject_room(const char *subject, const char *region, const char **room, char *why,
                              size_t whylen);

/**
 * Validate the payload of a message for `room` and fill `out` (release it
 * with ctl_envelope_free). The payload must be a JSON object whose "room"
 * equals `room` and whose "msg_id" is 32 lower-case hex digits; trailing
 * whitespace is ignored. It is stored as received when it has no "seq"
 * member (the normal case, no re-serialising); otherwise it is
 * re-serialised without it, so that the seq is a plain splice later and a
 * forged seq never reaches history. Returns 0, or -1 with `why` set.
 */
int ctl_envelope_parse(const char *room, const char *data, size_t len, ctl_envelope *out, char *why,
                       size_t whylen);

/**
 * The two halves of ctl_envelope_parse, exposed for the differential fuzz
 * target. The fast path decides the common case without building a JSON
 * tree (mr_json_scan): true means accepted and `out` filled; false means
 * "not plainly valid, ask jansson" and leaves `out` untouched. The full
 * path (jansson) decides everything and explains rejections.
 */
bool ctl_envelope_parse_fast(const char *room, const char *data, size_t len, ctl_envelope *out);
int ctl_envelope_parse_full(const char *room, const char *data, size_t len, ctl_envelope *out,
                            char *why, size_t whylen);

/** Free `e->env` (the struct itself is the caller's). */
void ctl_envelope_free(ctl_envelope *e);

#endif
