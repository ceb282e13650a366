/* Growable byte buffer; the allocation policy (abort on OOM) lives in mr_alloc. */
#include "mr_buf.h"
#include "mr_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mr_buf_reserve(mr_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = mr_realloc(b->data, cap);
    b->cap = cap;
}

void mr_buf_append(mr_buf *b, const void *p, size_t n)
{
    mr_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mr_buf_puts(mr_buf *b, const char *s)
{
    mr_buf_append(b, s, strlen(s));
}

void mr_buf_putc(mr_buf *b, char c)
{
    mr_buf_append(b, &c, 1);
}

void mr_buf_vprintf(mr_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    mr_buf_reserve(b, (size_t)n);
    /* The length was measured above: this call writes exactly n bytes and the NUL. */
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void mr_buf_printf(mr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mr_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void mr_buf_json_str(mr_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mr_buf_reserve(b, n + 2);
    mr_buf_putc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        mr_buf_append(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"':
            mr_buf_puts(b, "\\\"");
            break;
        case '\\':
            mr_buf_puts(b, "\\\\");
            break;
        case '\n':
            mr_buf_puts(b, "\\n");
            break;
        case '\r':
            mr_buf_puts(b, "\\r");
            break;
        case '\t':
            mr_buf_puts(b, "\\t");
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            mr_buf_append(b, u, 6);
        }
        }
    }
    mr_buf_append(b, s + start, n - start);
    mr_buf_putc(b, '"');
}

void mr_buf_reset(mr_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void mr_buf_free(mr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
