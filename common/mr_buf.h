/* A growable byte buffer for building frames, HTTP bodies and metrics text. */
#ifndef MR_BUF_H
#define MR_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct mr_buf {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
} mr_buf;

#define MR_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/** Make room for at least `extra` more bytes. */
void mr_buf_reserve(mr_buf *b, size_t extra);
void mr_buf_append(mr_buf *b, const void *p, size_t n);
void mr_buf_puts(mr_buf *b, const char *s);
void mr_buf_putc(mr_buf *b, char c);
void mr_buf_printf(mr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mr_buf_vprintf(mr_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/** Append `s` as a JSON string literal, quotes included. */
void mr_buf_json_str(mr_buf *b, const char *s, size_t n);
void mr_buf_reset(mr_buf *b);
void mr_buf_free(mr_buf *b);

#endif
