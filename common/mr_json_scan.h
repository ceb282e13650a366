/*
 * A fast, allocation-free scan of a JSON object for hot paths.
 *
 * It answers one question: is this text plainly a valid JSON object, and
 * where are its top-level members? "Plainly" means it stays on the common
 * ground where every strict parser agrees: it gives up (returns false) on
 * anything it does not decide itself — \u escapes (surrogate rules),
 * exponents, integers over 18 digits, nesting deeper than
 * MR_JSON_SCAN_DEPTH, more than MR_JSON_SCAN_MEMBERS members in one object,
 * a nested object with an escaped or repeated name (the top level's are
 * reported instead: key_escaped, mr_json_member_get's `repeated`) — and on
 * everything invalid. A caller then falls back to a full parser
 * (jansson), which decides and explains. So a true answer is exact and a
 * false one only means "ask the full parser".
 */
#ifndef MR_JSON_SCAN_H
#define MR_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define MR_JSON_SCAN_DEPTH   64
#define MR_JSON_SCAN_MEMBERS 32

typedef enum {
    MR_JSON_STRING,
    MR_JSON_INTEGER,
    MR_JSON_REAL,
    MR_JSON_OBJECT,
    MR_JSON_ARRAY,
    MR_JSON_TRUE,
    MR_JSON_FALSE,
    MR_JSON_NULL,
} mr_json_type;

typedef struct {
    const char *key; /* the key's raw bytes, without quotes */
    size_t key_len;
    bool key_escaped;  /* the key contains a backslash escape */
    const char *value; /* the value's raw text (a string without its quotes) */
    size_t value_len;
    bool value_escaped; /* a string value containing a backslash escape */
    mr_json_type type;
} mr_json_member;

typedef struct {
    mr_json_member members[MR_JSON_SCAN_MEMBERS];
    size_t count;
} mr_json_object;

/** True when `text` (`len` bytes, surrounding whitespace allowed) is plainly a valid object. */
bool mr_json_scan_object(const char *text, size_t len, mr_json_object *out);

/**
 * The member named `key` (compared byte for byte; escaped keys never match),
 * or NULL. JSON leaves repeated names to the parser (jansson keeps the last),
 * so `*repeated` is set when the name occurs more than once.
 */
const mr_json_member *mr_json_member_get(const mr_json_object *o, const char *key, bool *repeated);

#endif
