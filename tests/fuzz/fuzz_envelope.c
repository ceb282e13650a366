/*
 * Differential libFuzzer target for the control plane's stream messages
 * (control/ctl_envelope.c): the fast scan and the jansson path must agree.
 * Whatever the fast path accepts, jansson accepts with the same room,
 * msg_id, ts and stored text; whatever is accepted at all is stored as a
 * JSON object without "seq" that ends with '}' (history splices the seq in
 * before it). The first input byte picks the room, so both a matching and
 * a mismatching "room" are reached.
 */
#include "fuzz_target.h"
#include "ctl_envelope.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_stored(const ctl_envelope *e, const char *room)
{
    size_t n = strlen(e->env);
    if (n == 0 || e->env[n - 1] != '}')
        abort();
    json_t *o = json_loads(e->env, 0, NULL);
    if (!json_is_object(o) || json_object_get(o, "seq"))
        abort();
    const char *r = json_string_value(json_object_get(o, "room"));
    const char *id = json_string_value(json_object_get(o, "msg_id"));
    if (!r || strcmp(r, room) != 0 || strcmp(e->room, room) != 0 || !id ||
        strcmp(id, e->msg_id) != 0)
        abort();
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *room = data[0] & 1 ? "r" : "lobby";
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    ctl_envelope fast = {0}, full = {0}, both = {0};
    char why[256];
    bool fast_ok = ctl_envelope_parse_fast(room, text, len, &fast);
    bool full_ok = ctl_envelope_parse_full(room, text, len, &full, why, sizeof why) == 0;
    bool both_ok = ctl_envelope_parse(room, text, len, &both, why, sizeof why) == 0;
    if (both_ok != (fast_ok || full_ok))
        abort();
    if (fast_ok) {
        if (!full_ok || strcmp(fast.room, full.room) != 0 ||
            strcmp(fast.msg_id, full.msg_id) != 0 || fast.ts_ms != full.ts_ms ||
            strcmp(fast.env, full.env) != 0)
            abort();
        check_stored(&fast, room);
    }
    if (full_ok)
        check_stored(&full, room);
    ctl_envelope_free(&fast);
    ctl_envelope_free(&full);
    ctl_envelope_free(&both);
    return 0;
}
