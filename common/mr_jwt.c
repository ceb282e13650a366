/*
 * HS256 JWT verification and signing on OpenSSL's HMAC.
 *
 * We verify tokens ourselves rather than through libjwt: the check is small,
 * and owning it lets us pin the algorithm before anything else is looked at,
 * compare MACs with CRYPTO_memcmp (libjwt compared them with strcmp, a timing
 * leak, CVE-2024-25189) and bound every input size.
 */
#include "mr_jwt.h"
#include "mr_alloc.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t mr_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
        out[o++] = b64url_chars[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long mr_b64url_decode(const char *in, size_t n, unsigned char *out)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Non-canonical encodings leave set bits behind; reject them. */
    if (acc != 0)
        return -1;
    return (long)o;
}

static json_t *decode_json_part(const char *p, size_t n)
{
    unsigned char *raw = mr_malloc(n * 3 / 4 + 3);
    long len = mr_b64url_decode(p, n, raw);
    json_t *j = NULL;
    if (len > 0)
        j = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int audience_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *e;
        json_array_foreach(aud, i, e) if (json_is_string(e) &&
                                          strcmp(json_string_value(e), want) == 0) return 1;
    }
    return 0;
}

static int valid_rooms_claim(json_t *rooms)
{
    if (!json_is_array(rooms) || json_array_size(rooms) > 1024)
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(rooms, i, e) if (!json_is_string(e) || json_string_length(e) == 0 ||
                                        json_string_length(e) > 129) return 0;
    return 1;
}

/* HMAC of the signed part with `secret` matches the decoded signature `sig`. */
static bool mac_matches(const unsigned char *secret, size_t secret_len, const char *token,
                        size_t signed_len, const unsigned char *sig, long sl)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)token, signed_len, mac,
              &maclen))
        return false;
    return sl == (long)maclen && CRYPTO_memcmp(sig, mac, maclen) == 0;
}

/*
 * The signature against the keys `kid` selects (mr_jwt_key). Every
 * candidate is computed even after a match, so the time taken says
 * nothing about which key matched.
 */
static mr_jwt_status check_signature(const mr_jwt_params *p, const char *kid, const char *token,
                                     size_t len, const char *dot2)
{
    size_t siglen = len - (size_t)(dot2 + 1 - token);
    size_t signed_len = (size_t)(dot2 - token);
    unsigned char sig[MR_JWT_MAX_LEN];
    long sl = mr_b64url_decode(dot2 + 1, siglen, sig);
    if (p->nkeys == 0)
        return mac_matches(p->secret, p->secret_len, token, signed_len, sig, sl)
                   ? MR_JWT_OK
                   : MR_JWT_BAD_SIGNATURE;
    bool named = false;
    if (kid)
        for (size_t i = 0; i < p->nkeys && !named; i++)
            named = p->keys[i].kid && strcmp(p->keys[i].kid, kid) == 0;
    bool ok = false, tried = false;
    for (size_t i = 0; i < p->nkeys; i++) {
        const mr_jwt_key *k = &p->keys[i];
        bool candidate = !kid ? true : named ? k->kid && strcmp(k->kid, kid) == 0 : !k->kid;
        if (!candidate)
            continue;
        tried = true;
        ok |= mac_matches(k->secret, k->secret_len, token, signed_len, sig, sl);
    }
    if (!tried)
        return MR_JWT_UNKNOWN_KID;
    return ok ? MR_JWT_OK : MR_JWT_BAD_SIGNATURE;
}

mr_jwt_status mr_jwt_verify(const mr_jwt_params *p, const char *token, size_t len, int64_t now,
                            mr_jwt_claims *out)
{
    if (len == 0 || len > MR_JWT_MAX_LEN)
        return MR_JWT_MALFORMED;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1)
        return MR_JWT_MALFORMED;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return MR_JWT_MALFORMED;

    mr_jwt_status st = MR_JWT_MALFORMED;
    json_t *header = decode_json_part(token, (size_t)(dot1 - token));
    json_t *payload = NULL;
    if (!header)
        goto done;
    /* Pin the algorithm before trusting anything else in the token. */
    json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        st = MR_JWT_BAD_ALG;
        goto done;
    }
    json_t *crit = json_object_get(header, "crit");
    if (crit) {
        st = MR_JWT_MALFORMED; /* we implement no critical extensions */
        goto done;
    }

    json_t *kid = json_object_get(header, "kid");
    if (kid && !json_is_string(kid))
        goto done;
    st = check_signature(p, kid ? json_string_value(kid) : NULL, token, len, dot2);
    if (st != MR_JWT_OK)
        goto done;
    st = MR_JWT_MALFORMED;

    payload = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!payload)
        goto done;
    json_t *exp = json_object_get(payload, "exp");
    json_t *nbf = json_object_get(payload, "nbf");
    if (!json_is_number(exp) || json_number_value(exp) + (double)p->leeway_s <= (double)now) {
        st = MR_JWT_EXPIRED;
        goto done;
    }
    if (nbf && (!json_is_number(nbf) || json_number_value(nbf) > (double)(now + p->leeway_s))) {
        st = MR_JWT_NOT_YET_VALID;
        goto done;
    }
    if (p->issuer) {
        json_t *iss = json_object_get(payload, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0) {
            st = MR_JWT_BAD_ISSUER;
            goto done;
        }
    }
    if (p->audience && !audience_matches(json_object_get(payload, "aud"), p->audience)) {
        st = MR_JWT_BAD_AUDIENCE;
        goto done;
    }
    json_t *sub = json_object_get(payload, "sub");
    json_t *rooms = json_object_get(payload, "rooms");
    if (!json_is_string(sub) || json_string_length(sub) == 0 ||
        json_string_length(sub) > MR_JWT_SUB_MAX || (rooms && !valid_rooms_claim(rooms))) {
        st = MR_JWT_BAD_CLAIMS;
        goto done;
    }
    out->sub = mr_strdup(json_string_value(sub));
    out->rooms = rooms ? json_incref(rooms) : NULL;
    /* A double beyond int64_t's range does not convert (undefined behaviour): clamp first. */
    double e = json_number_value(exp);
    out->exp = e >= (double)MR_JWT_EXP_MAX ? MR_JWT_EXP_MAX : (int64_t)e;
    st = MR_JWT_OK;
done:
    json_decref(header);
    json_decref(payload);
    return st;
}

void mr_jwt_claims_free(mr_jwt_claims *c)
{
    free(c->sub);
    json_decref(c->rooms);
    c->sub = NULL;
    c->rooms = NULL;
}

const char *mr_jwt_status_str(mr_jwt_status s)
{
    switch (s) {
    case MR_JWT_OK:
        return "ok";
    case MR_JWT_MALFORMED:
        return "token is malformed";
    case MR_JWT_BAD_ALG:
        return "token algorithm must be HS256";
    case MR_JWT_BAD_SIGNATURE:
        return "token signature is invalid";
    case MR_JWT_EXPIRED:
        return "token is expired or has no exp";
    case MR_JWT_NOT_YET_VALID:
        return "token is not valid yet (nbf)";
    case MR_JWT_BAD_ISSUER:
        return "token issuer is not accepted";
    case MR_JWT_BAD_AUDIENCE:
        return "token audience is not accepted";
    case MR_JWT_BAD_CLAIMS:
        return "token claims are invalid (sub, rooms)";
    case MR_JWT_UNKNOWN_KID:
        return "token key id (kid) names no key this server has";
    }
    return "unknown token error";
}

char *mr_jwt_sign(const unsigned char *secret, size_t secret_len, json_t *claims)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *payload = json_dumps(claims, JSON_COMPACT);
    size_t pl = strlen(payload);
    size_t cap = (sizeof header + pl) * 4 / 3 + 128;
    char *tok = mr_malloc(cap);
    size_t n = mr_b64url_encode((const unsigned char *)header, sizeof header - 1, tok);
    tok[n++] = '.';
    n += mr_b64url_encode((const unsigned char *)payload, pl, tok + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)tok, n, mac, &maclen);
    tok[n++] = '.';
    mr_b64url_encode(mac, maclen, tok + n);
    free(payload);
    return tok;
}

int mr_jwt_room_allowed(const json_t *rooms, const char *room, size_t room_len)
{
    if (!rooms)
        return 1;
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)rooms, i, e)
    {
        const char *pat = json_string_value(e);
        size_t pl = json_string_length(e);
        if (pl > 0 && pat[pl - 1] == '*') {
            if (room_len >= pl - 1 && memcmp(room, pat, pl - 1) == 0)
                return 1;
        } else if (pl == room_len && memcmp(room, pat, pl) == 0) {
            return 1;
        }
    }
    return 0;
}
