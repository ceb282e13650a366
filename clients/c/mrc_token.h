/* Development tokens: mint the HS256 JWTs the relay accepts (docs/protocol.md, "Tokens"). */
#ifndef MRC_TOKEN_H
#define MRC_TOKEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct mrc_token_params {
    const unsigned char *secret; /* the relay's auth.secret */
    size_t secret_len;
    const char *sub;          /* user id, 1..256 bytes (required) */
    int64_t ttl_s;            /* lifetime in seconds; exp = now + ttl_s (> 0) */
    const char *const *rooms; /* room patterns ("general", "team-*"), or NULL for all rooms */
    size_t n_rooms;
    const char *iss; /* or NULL */
    const char *aud; /* or NULL */
    int64_t now;     /* issue time in seconds since the epoch; 0 means now */
} mrc_token_params;

/**
 * Mint a token. Returns a malloc'd JWT, or NULL with a one-line reason in
 * `err` when a parameter is invalid (empty secret, bad sub, ttl, or room
 * pattern).
 */
char *mrc_token_mint(const mrc_token_params *p, char *err, size_t errlen);

/** True when `pattern` is a room name or a room-name prefix followed by '*'. */
int mrc_token_room_pattern_valid(const char *pattern);

/**
 * Read a secret file: its contents without trailing newline characters.
 * Returns a malloc'd buffer and its length, or NULL with a reason in `err`.
 */
unsigned char *mrc_token_read_secret(const char *path, size_t *len, char *err, size_t errlen);

#endif
