/*
 * libFuzzer target for the fast JSON object scan, against jansson: whatever
 * the scan calls plainly valid, jansson must parse as an object with the
 * same number of distinct members, and every member the scan reports must
 * lie inside the input.
 */
#include "fuzz_target.h"
#include "mr_json_scan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    mr_json_object o;
    if (!mr_json_scan_object(text, size, &o))
        return 0;
    json_t *j = json_loadb(text, size, 0, NULL);
    if (!json_is_object(j))
        abort();
    size_t distinct = 0;
    for (size_t i = 0; i < o.count; i++) {
        const mr_json_member *m = &o.members[i];
        if (m->key < text || m->key + m->key_len > text + size || m->value < text ||
            m->value + m->value_len > text + size)
            abort();
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            if (o.members[k].key_len == m->key_len && !memcmp(o.members[k].key, m->key, m->key_len))
                seen = true;
        distinct += !seen;
    }
    /* Escaped keys may decode to the same name; only unescaped ones can be counted exactly. */
    bool any_escaped = false;
    for (size_t i = 0; i < o.count; i++)
        any_escaped |= o.members[i].key_escaped;
    if (!any_escaped && json_object_size(j) != distinct)
        abort();
    json_decref(j);
    return 0;
}
