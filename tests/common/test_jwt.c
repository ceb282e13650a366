/* JWT validation: every way a token can be wrong, and the happy path. */
#include "test_suites.h"
#include "mr_jwt.h"

#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef";
#define NOW 1700000000

static mr_jwt_params params(void)
{
    return (mr_jwt_params){.secret = secret, .secret_len = sizeof secret - 1, .leeway_s = 0};
}

static char *sign_claims(const char *json)
{
    json_t *c = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(c);
    char *t = mr_jwt_sign(secret, sizeof secret - 1, c);
    json_decref(c);
    return t;
}

/* Build a token with an arbitrary header, signed with HS256 over header.payload. */
/* header.payload with no signature part yet; the caller appends one. */
static char *forge(const char *header, const char *payload)
{
    char *tok = malloc(4096);
    size_t n = mr_b64url_encode((const unsigned char *)header, strlen(header), tok);
    tok[n++] = '.';
    n += mr_b64url_encode((const unsigned char *)payload, strlen(payload), tok + n);
    tok[n] = '\0';
    return tok;
}

static mr_jwt_status verify(const char *tok, mr_jwt_claims *out)
{
    mr_jwt_params p = params();
    return mr_jwt_verify(&p, tok, strlen(tok), NOW, out);
}

START_TEST(valid_token)
{
    char *t =
        sign_claims("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[\"general\",\"team-*\"]}");
    mr_jwt_claims c;
    ck_assert_int_eq(verify(t, &c), MR_JWT_OK);
    ck_assert_str_eq(c.sub, "alice");
    ck_assert_int_eq(c.exp, 1700000100);
    ck_assert(mr_jwt_room_allowed(c.rooms, "general", 7));
    ck_assert(mr_jwt_room_allowed(c.rooms, "team-blue", 9));
    ck_assert(!mr_jwt_room_allowed(c.rooms, "team", 4));
    ck_assert(!mr_jwt_room_allowed(c.rooms, "generalx", 8));
    mr_jwt_claims_free(&c);
    free(t);
}
END_TEST

START_TEST(no_rooms_claim_allows_all)
{
    char *t = sign_claims("{\"sub\":\"bob\",\"exp\":1700000100}");
    mr_jwt_claims c;
    ck_assert_int_eq(verify(t, &c), MR_JWT_OK);
    ck_assert_ptr_null(c.rooms);
    ck_assert(mr_jwt_room_allowed(c.rooms, "anything", 8));
    mr_jwt_claims_free(&c);
    free(t);
}
END_TEST

START_TEST(expired)
{
    char *t = sign_claims("{\"sub\":\"alice\",\"exp\":1699999999}");
    mr_jwt_claims c;
    ck_assert_int_eq(verify(t, &c), MR_JWT_EXPIRED);
    free(t);
    t = sign_claims("{\"sub\":\"alice\"}");
    ck_assert_int_eq(verify(t, &c), MR_JWT_EXPIRED); /* exp is required */
    free(t);
}
END_TEST

START_TEST(leeway)
{
    char *t = sign_claims("{\"sub\":\"alice\",\"exp\":1699999999}");
    mr_jwt_params p = params();
    p.leeway_s = 5;
    mr_jwt_claims c;
    ck_assert_int_eq(mr_jwt_verify(&p, t, strlen(t), NOW, &c), MR_JWT_OK);
    mr_jwt_claims_free(&c);
    free(t);
}
END_TEST

START_TEST(not_yet_valid)
{
    char *t = sign_claims("{\"sub\":\"alice\",\"exp\":1700000100,\"nbf\":1700000050}");
    mr_jwt_claims c;
    ck_assert_int_eq(verify(t, &c), MR_JWT_NOT_YET_VALID);
    free(t);
}
END_TEST

START_TEST(wrong_signature)
{
    json_t *claims = json_loads("{\"sub\":\"alice\",\"exp\":1700000100}", 0, NULL);
    char *t = mr_jwt_sign((const unsigned char *)"another secret", 14, claims);
    json_decref(claims);
    mr_jwt_claims c;
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_SIGNATURE);
    /* A tampered payload with the original signature. */
    char *good = sign_claims("{\"sub\":\"alice\",\"exp\":1700000100}");
    char *evil = sign_claims("{\"sub\":\"admin\",\"exp\":1700000100}");
    char *sig = strrchr(good, '.');
    char *evil_sig = strrchr(evil, '.');
    strcpy(evil_sig, sig);
    ck_assert_int_eq(verify(evil, &c), MR_JWT_BAD_SIGNATURE);
    free(t);
    free(good);
    free(evil);
}
END_TEST

START_TEST(alg_none_and_others)
{
    mr_jwt_claims c;
    const char *payload = "{\"sub\":\"alice\",\"exp\":1700000100}";
    char *t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload);
    size_t n = strlen(t);
    strcpy(t + n, ".");
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_ALG);
    free(t);
    t = forge("{\"alg\":\"RS256\"}", payload);
    strcat(t, ".c2ln");
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_ALG);
    free(t);
    t = forge("{\"alg\":\"HS512\"}", payload);
    strcat(t, ".c2ln");
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_ALG);
    free(t);
    t = forge("{\"typ\":\"JWT\"}", payload);
    strcat(t, ".c2ln");
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_ALG);
    free(t);
}
END_TEST

START_TEST(malformed)
{
    mr_jwt_claims c;
    const char *bad[] = {
        "", "abc", "a.b", "a.b.c.d", "!!!.???.###", "e30.e30.", "bm90IGpzb24.e30.e30"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(verify(bad[i], &c) == MR_JWT_MALFORMED ||
                          verify(bad[i], &c) == MR_JWT_BAD_ALG,
                      "token %s", bad[i]);
    char huge[MR_JWT_MAX_LEN + 10];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    ck_assert_int_eq(verify(huge, &c), MR_JWT_MALFORMED);
}
END_TEST

START_TEST(issuer_audience)
{
    char *t =
        sign_claims("{\"sub\":\"a\",\"exp\":1700000100,\"iss\":\"me\",\"aud\":[\"x\",\"relay\"]}");
    mr_jwt_params p = params();
    mr_jwt_claims c;
    p.issuer = "me";
    p.audience = "relay";
    ck_assert_int_eq(mr_jwt_verify(&p, t, strlen(t), NOW, &c), MR_JWT_OK);
    mr_jwt_claims_free(&c);
    p.issuer = "other";
    ck_assert_int_eq(mr_jwt_verify(&p, t, strlen(t), NOW, &c), MR_JWT_BAD_ISSUER);
    p.issuer = "me";
    p.audience = "nope";
    ck_assert_int_eq(mr_jwt_verify(&p, t, strlen(t), NOW, &c), MR_JWT_BAD_AUDIENCE);
    free(t);
}
END_TEST

START_TEST(bad_claims)
{
    mr_jwt_claims c;
    char *t = sign_claims("{\"exp\":1700000100}");
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_CLAIMS);
    free(t);
    t = sign_claims("{\"sub\":\"a\",\"exp\":1700000100,\"rooms\":\"general\"}");
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_CLAIMS);
    free(t);
    t = sign_claims("{\"sub\":\"\",\"exp\":1700000100}");
    ck_assert_int_eq(verify(t, &c), MR_JWT_BAD_CLAIMS);
    free(t);
}
END_TEST

/*
 * An `exp` far in the future is clamped to the year 9999 (253402300799): a
 * double near 2^63 does not fit an int64_t, and seconds above 9.2e12 overflow
 * once turned into microseconds for a timer.
 */
START_TEST(far_exp_is_clamped)
{
    static const char *const exps[] = {"1e19", "9223372036854775807", "9300000000000", "1e300",
                                       "253402300800"};
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++) {
        char claims[128];
        snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"exp\":%s}", exps[i]);
        char *t = sign_claims(claims);
        mr_jwt_claims c;
        ck_assert_int_eq(verify(t, &c), MR_JWT_OK);
        ck_assert_msg(c.exp == 253402300799, "exp %s became %lld", exps[i], (long long)c.exp);
        mr_jwt_claims_free(&c);
        free(t);
    }
    char *t = sign_claims("{\"sub\":\"a\",\"exp\":-1e300}");
    mr_jwt_claims c;
    ck_assert_int_eq(verify(t, &c), MR_JWT_EXPIRED);
    free(t);
}
END_TEST

START_TEST(b64url_roundtrip)
{
    unsigned char in[64] = {0}, out[96];
    char enc[128];
    for (size_t n = 0; n < sizeof in; n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (unsigned char)(i * 37 + n);
        size_t el = mr_b64url_encode(in, n, enc);
        ck_assert_int_eq(mr_b64url_decode(enc, el, out), (long)n);
        ck_assert(memcmp(in, out, n) == 0);
    }
    ck_assert_int_eq(mr_b64url_decode("a", 1, out), -1);
    ck_assert_int_eq(mr_b64url_decode("ab+/", 4, out), -1);
    ck_assert_int_eq(mr_b64url_decode("QR", 2, out), -1); /* non-canonical trailing bits */
}
END_TEST

/* header.payload signed with `key` (HS256), for tokens with a kid header. */
static char *sign_with(const char *key, const char *header, const char *payload)
{
    char *tok = forge(header, payload);
    size_t n = strlen(tok);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)tok, n, mac, &maclen);
    tok[n++] = '.';
    mr_b64url_encode(mac, maclen, tok + n);
    return tok;
}

static mr_jwt_status verify_keys(const mr_jwt_key *keys, size_t n, const char *key,
                                 const char *header)
{
    char *tok = sign_with(key, header, "{\"sub\":\"a\",\"exp\":1700000100}");
    mr_jwt_params p = {.keys = keys, .nkeys = n};
    mr_jwt_claims c;
    mr_jwt_status st = mr_jwt_verify(&p, tok, strlen(tok), NOW, &c);
    if (st == MR_JWT_OK)
        mr_jwt_claims_free(&c);
    free(tok);
    return st;
}

/* Several keys during a rotation: a kid picks its key, no kid tries them all. */
START_TEST(keys_and_kid)
{
    const char *k_new = "new-secret-0123456789abcdef0123456789";
    const char *k_old = "old-secret-0123456789abcdef0123456789";
    mr_jwt_key both[] = {{"2026-12", (const unsigned char *)k_new, strlen(k_new)},
                         {"2026-06", (const unsigned char *)k_old, strlen(k_old)}};
    ck_assert_int_eq(verify_keys(both, 2, k_new, "{\"alg\":\"HS256\",\"kid\":\"2026-12\"}"),
                     MR_JWT_OK);
    ck_assert_int_eq(verify_keys(both, 2, k_old, "{\"alg\":\"HS256\",\"kid\":\"2026-06\"}"),
                     MR_JWT_OK);
    ck_assert_int_eq(verify_keys(both, 2, k_old, "{\"alg\":\"HS256\"}"), MR_JWT_OK);
    ck_assert_int_eq(verify_keys(both, 2, k_new, "{\"alg\":\"HS256\"}"), MR_JWT_OK);
    /* The kid names the key: the other key's signature does not count. */
    ck_assert_int_eq(verify_keys(both, 2, k_old, "{\"alg\":\"HS256\",\"kid\":\"2026-12\"}"),
                     MR_JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify_keys(both, 2, k_new, "{\"alg\":\"HS256\",\"kid\":\"1999\"}"),
                     MR_JWT_UNKNOWN_KID);
    ck_assert_int_eq(verify_keys(both, 2, k_new, "{\"alg\":\"HS256\",\"kid\":7}"),
                     MR_JWT_MALFORMED);
    ck_assert_int_eq(verify_keys(both, 2, "another-secret-0123456789abcdef", "{\"alg\":\"HS256\"}"),
                     MR_JWT_BAD_SIGNATURE);
    /* A key without an id takes tokens whose kid names no key, and only those. */
    mr_jwt_key mixed[] = {{"a", (const unsigned char *)k_new, strlen(k_new)},
                          {NULL, (const unsigned char *)k_old, strlen(k_old)}};
    ck_assert_int_eq(verify_keys(mixed, 2, k_old, "{\"alg\":\"HS256\",\"kid\":\"zzz\"}"),
                     MR_JWT_OK);
    ck_assert_int_eq(verify_keys(mixed, 2, k_old, "{\"alg\":\"HS256\",\"kid\":\"a\"}"),
                     MR_JWT_BAD_SIGNATURE);
}
END_TEST

Suite *jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("verify");
    tcase_add_test(tc, valid_token);
    tcase_add_test(tc, no_rooms_claim_allows_all);
    tcase_add_test(tc, expired);
    tcase_add_test(tc, leeway);
    tcase_add_test(tc, not_yet_valid);
    tcase_add_test(tc, wrong_signature);
    tcase_add_test(tc, alg_none_and_others);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, issuer_audience);
    tcase_add_test(tc, keys_and_kid);
    tcase_add_test(tc, bad_claims);
    tcase_add_test(tc, far_exp_is_clamped);
    tcase_add_test(tc, b64url_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}
