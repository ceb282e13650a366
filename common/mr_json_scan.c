/* Allocation-free JSON object scan; see mr_json_scan.h for what it decides and what it leaves. */
#include "mr_json_scan.h"

#include <string.h>

typedef struct {
    const char *p, *end;
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* One UTF-8 sequence starting at s->p (a byte >= 0x80): RFC 3629, no overlongs or surrogates. */
static bool scan_utf8(scanner *s)
{
    const unsigned char *u = (const unsigned char *)s->p;
    size_t left = (size_t)(s->end - s->p);
    unsigned char c = u[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return false;
    if (left < n || u[1] < lo || u[1] > hi)
        return false;
    for (size_t i = 2; i < n; i++)
        if (!is_cont(u[i]))
            return false;
    s->p += n;
    return true;
}

/* A byte a string may hold as it is: printable ASCII but '"' and '\\'. */
static inline bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* A string; s->p is on the opening quote. Leaves s->p after the closing quote. */
static bool scan_string(scanner *s, bool *escaped)
{
    s->p++;
    *escaped = false;
    while (s->p < s->end) {
        /* The common case first: runs of plain ASCII. */
        while (s->p < s->end && plain((unsigned char)*s->p))
            s->p++;
        if (s->p >= s->end)
            break;
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (s->p + 1 >= s->end || !strchr("\"\\/bfnrt", s->p[1]) || s->p[1] == '\0')
                return false; /* \u (surrogate rules) is left to the full parser */
            *escaped = true;
            s->p += 2;
        } else if (c >= 0x80) {
            if (!scan_utf8(s))
                return false;
        } else {
            s->p++;
        }
    }
    return false;
}

static size_t digits(scanner *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return (size_t)(s->p - start);
}

/* A number without exponent: -?(0|[1-9][0-9]*)(.[0-9]+)?, integers of at most 18 digits. */
static bool scan_number(scanner *s, mr_json_type *type)
{
    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return false;
    size_t n;
    if (*s->p == '0') {
        s->p++;
        n = 1;
    } else if ((n = digits(s)) == 0) {
        return false;
    }
    *type = MR_JSON_INTEGER;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        size_t f = digits(s);
        if (f == 0 || n + f > 300)
            return false;
        *type = MR_JSON_REAL;
    } else if (n > 18) {
        return false; /* may not fit 64 bits */
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
        return false;
    return true;
}

static bool scan_literal(scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool scan_value(scanner *s, int depth, mr_json_member *m);

/* On '{' or '[': step in; true (and past it) when `close` follows at once. */
static bool empty_container(scanner *s, char close)
{
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    return false;
}

/* After an element: ',' leads to the next one, `close` ends the container (*done). */
static bool next_element(scanner *s, char close, bool *done)
{
    skip_ws(s);
    if (s->p >= s->end || (*s->p != ',' && *s->p != close))
        return false;
    *done = *s->p == close;
    s->p++;
    skip_ws(s);
    return true;
}

/*
 * An object; s->p is on '{'. With `out`, the members are recorded (top
 * level only). Nested objects must have plainly distinct names: at most
 * MR_JSON_SCAN_MEMBERS of them, none escaped (two escapes may spell one
 * name), none repeated; anything else is left to the full parser.
 */
static bool scan_object(scanner *s, int depth, mr_json_object *out)
{
    if (empty_container(s, '}'))
        return true;
    struct {
        const char *p;
        size_t n;
    } names[MR_JSON_SCAN_MEMBERS];
    size_t nnames = 0;
    for (bool done = false; !done;) {
        if (s->p >= s->end || *s->p != '"')
            return false;
        mr_json_member m;
        m.key = s->p + 1;
        if (!scan_string(s, &m.key_escaped))
            return false;
        m.key_len = (size_t)(s->p - 1 - m.key);
        if (!out) {
            if (m.key_escaped || nnames == MR_JSON_SCAN_MEMBERS)
                return false;
            for (size_t i = 0; i < nnames; i++)
                if (names[i].n == m.key_len && memcmp(names[i].p, m.key, m.key_len) == 0)
                    return false;
            names[nnames].p = m.key;
            names[nnames++].n = m.key_len;
        }
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        if (!scan_value(s, depth + 1, &m))
            return false;
        if (out) {
            if (out->count == MR_JSON_SCAN_MEMBERS)
                return false;
            out->members[out->count++] = m;
        }
        if (!next_element(s, '}', &done))
            return false;
    }
    return true;
}

static bool scan_array(scanner *s, int depth)
{
    if (empty_container(s, ']'))
        return true;
    for (bool done = false; !done;) {
        mr_json_member m;
        if (!scan_value(s, depth + 1, &m) || !next_element(s, ']', &done))
            return false;
    }
    return true;
}

/* Any value; fills m->value, value_len, value_escaped and type. */
static bool scan_value(scanner *s, int depth, mr_json_member *m)
{
    if (s->p >= s->end || depth > MR_JSON_SCAN_DEPTH)
        return false;
    const char *start = s->p;
    bool ok;
    m->value_escaped = false;
    switch (*s->p) {
    case '{':
        m->type = MR_JSON_OBJECT;
        ok = scan_object(s, depth, NULL);
        break;
    case '[':
        m->type = MR_JSON_ARRAY;
        ok = scan_array(s, depth);
        break;
    case '"':
        m->type = MR_JSON_STRING;
        ok = scan_string(s, &m->value_escaped);
        if (ok) {
            m->value = start + 1;
            m->value_len = (size_t)(s->p - 1 - m->value);
            return true;
        }
        break;
    case 't':
        m->type = MR_JSON_TRUE;
        ok = scan_literal(s, "true");
        break;
    case 'f':
        m->type = MR_JSON_FALSE;
        ok = scan_literal(s, "false");
        break;
    case 'n':
        m->type = MR_JSON_NULL;
        ok = scan_literal(s, "null");
        break;
    default:
        ok = (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && scan_number(s, &m->type);
        break;
    }
    m->value = start;
    m->value_len = (size_t)(s->p - start);
    return ok;
}

bool mr_json_scan_object(const char *text, size_t len, mr_json_object *out)
{
    scanner s = {text, text + len};
    out->count = 0;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || !scan_object(&s, 1, out))
        return false;
    skip_ws(&s);
    return s.p == s.end;
}

const mr_json_member *mr_json_member_get(const mr_json_object *o, const char *key, bool *repeated)
{
    const mr_json_member *found = NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < o->count; i++) {
        const mr_json_member *m = &o->members[i];
        if (!m->key_escaped && m->key_len == n && memcmp(m->key, key, n) == 0) {
            if (found)
                *repeated = true;
            else
                found = m;
        }
    }
    return found;
}
