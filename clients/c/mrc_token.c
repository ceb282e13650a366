/*
 * Development tokens. The relay verifies HS256 JWTs (common/mr_jwt.c); this
 * module builds the claims it expects (sub, iat, exp, and optionally rooms,
 * iss, aud) and signs them with mr_jwt_sign(), so that the CLI, the tests
 * and local setups can log in without an identity provider. Real
 * deployments mint tokens in their own backend with the same secret.
 */
#include "mrc_token.h"

#include "mr_alloc.h"
#include "mr_jwt.h"
#include "mr_proto.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int mrc_token_room_pattern_valid(const char *pattern)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') {
        /* "*" alone (every room) is allowed; otherwise the prefix must be room characters. */
        return n == 1 || mr_room_valid(pattern, n - 1);
    }
    return mr_room_valid(pattern, n);
}

char *mrc_token_mint(const mrc_token_params *p, char *err, size_t errlen)
{
    if (!p->secret || p->secret_len == 0) {
        snprintf(err, errlen, "the secret is empty");
        return NULL;
    }
    size_t sl = p->sub ? strlen(p->sub) : 0;
    if (sl == 0 || sl > 256) {
        snprintf(err, errlen, "the user id (sub) must be 1..256 bytes");
        return NULL;
    }
    if (p->ttl_s <= 0) {
        snprintf(err, errlen, "the ttl must be a positive number of seconds");
        return NULL;
    }
    for (size_t i = 0; i < p->n_rooms; i++) {
        if (!mrc_token_room_pattern_valid(p->rooms[i])) {
            snprintf(err, errlen,
                     "invalid room pattern '%s': use a room name ([A-Za-z0-9_-], 1..128 bytes) "
                     "or a prefix followed by '*'",
                     p->rooms[i]);
            return NULL;
        }
    }
    int64_t now = p->now ? p->now : (int64_t)time(NULL);
    json_t *claims = json_pack("{s:s, s:I, s:I}", "sub", p->sub, "iat", (json_int_t)now, "exp",
                               (json_int_t)now + p->ttl_s);
    if (!claims) {
        snprintf(err, errlen, "the user id is not valid UTF-8");
        return NULL;
    }
    if (p->rooms) {
        json_t *rooms = json_array();
        for (size_t i = 0; i < p->n_rooms; i++)
            json_array_append_new(rooms, json_string(p->rooms[i]));
        json_object_set_new(claims, "rooms", rooms);
    }
    if (p->iss)
        json_object_set_new(claims, "iss", json_string(p->iss));
    if (p->aud)
        json_object_set_new(claims, "aud", json_string(p->aud));
    char *tok = mr_jwt_sign(p->secret, p->secret_len, claims);
    json_decref(claims);
    return tok;
}

unsigned char *mrc_token_read_secret(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read secret file '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 256, n = 0;
    unsigned char *buf = mr_malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            if (cap >= 64 * 1024) {
                (void)fclose(f); /* opened to read only */
                free(buf);
                snprintf(err, errlen, "secret file '%s' is larger than 64 KiB", path);
                return NULL;
            }
            buf = mr_realloc(buf, cap *= 2);
        }
    }
    (void)fclose(f); /* opened to read only */
    /* Editors and `echo` add a final newline that is not part of the secret. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        free(buf);
        snprintf(err, errlen, "secret file '%s' is empty", path);
        return NULL;
    }
    *len = n;
    return buf;
}
