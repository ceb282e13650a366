/*
 * JSON Web Tokens, HS256 only. Verification pins the algorithm, compares
 * signatures in constant time and checks exp, nbf and the optional iss/aud.
 */
#ifndef MR_JWT_H
#define MR_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MR_JWT_OK = 0,
    MR_JWT_MALFORMED = -1,     /* not three base64url parts of JSON objects */
    MR_JWT_BAD_ALG = -2,       /* header alg is not HS256 (this covers "none") */
    MR_JWT_BAD_SIGNATURE = -3, /* HMAC does not match */
    MR_JWT_EXPIRED = -4,       /* exp missing or in the past */
    MR_JWT_NOT_YET_VALID = -5, /* nbf in the future */
    MR_JWT_BAD_ISSUER = -6,
    MR_JWT_BAD_AUDIENCE = -7,
    MR_JWT_BAD_CLAIMS = -8, /* sub missing or empty, rooms not a list of strings */
    MR_JWT_UNKNOWN_KID = -9 /* the header's kid names no key, and every key has an id */
} mr_jwt_status;

/*
 * One verification key. Several are configured while a secret is rotated:
 * a token whose header has a "kid" is checked against the key with that id
 * (or, when none has it, against the keys without an id); a token without
 * one against every key.
 */
typedef struct mr_jwt_key {
    const char *kid; /* NULL: no id */
    const unsigned char *secret;
    size_t secret_len;
} mr_jwt_key;

typedef struct mr_jwt_params {
    const unsigned char *secret;
    size_t secret_len;
    const char *issuer;   /* required value of iss, or NULL */
    const char *audience; /* required member of aud, or NULL */
    int64_t leeway_s;     /* clock skew tolerated on exp and nbf */
    /* The keys; when nkeys is 0, `secret` alone (without an id) is the key. */
    const mr_jwt_key *keys;
    size_t nkeys;
} mr_jwt_params;

typedef struct mr_jwt_claims {
    char *sub;     /* the user id; owned */
    json_t *rooms; /* array of room patterns, or NULL when the claim is absent; owned */
    int64_t exp;
} mr_jwt_claims;

/** Maximum accepted token length in bytes. */
#define MR_JWT_MAX_LEN 8192
/*
 * The latest `exp` kept: 9999-12-31T23:59:59Z. Later ones (up to 2^63, or
 * past the 9.2e12 seconds whose microseconds overflow an int64_t) are
 * clamped to it.
 */
#define MR_JWT_EXP_MAX 253402300799LL
/* Longest `sub` (user id) accepted; presence relays users of other relays up to it too. */
#define MR_JWT_SUB_MAX 256

/**
 * Verify `token` at time `now` (seconds). On MR_JWT_OK fills `out`, which the
 * caller releases with mr_jwt_claims_free(); on error `out` is untouched.
 */
mr_jwt_status mr_jwt_verify(const mr_jwt_params *p, const char *token, size_t len, int64_t now,
                            mr_jwt_claims *out);
void mr_jwt_claims_free(mr_jwt_claims *c);
/** A short English description of a status, for error frames and logs. */
const char *mr_jwt_status_str(mr_jwt_status s);

/** Sign `claims` with HS256. Returns a malloc'd token. */
char *mr_jwt_sign(const unsigned char *secret, size_t secret_len, json_t *claims);

/**
 * True when `room` is allowed by a rooms claim: NULL allows every room;
 * otherwise an entry equal to the room, or an entry "prefix*" whose prefix
 * starts the room name.
 */
int mr_jwt_room_allowed(const json_t *rooms, const char *room, size_t room_len);

/* base64url without padding; exposed for tests and the client library. */
size_t mr_b64url_encode(const unsigned char *in, size_t n, char *out);
/** Returns the decoded length, or -1 on invalid input. `out` needs n*3/4+3 bytes. */
long mr_b64url_decode(const char *in, size_t n, unsigned char *out);

#endif
