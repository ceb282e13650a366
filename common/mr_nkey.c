/*
 * NATS nkeys, the encoding of github.com/nats-io/nkeys: a prefix byte
 * naming the key type, the 32 key bytes and a CRC-16 (XMODEM, little
 * endian), in RFC 4648 base32 without padding. A seed carries two prefix
 * bytes, "seed" and the type of its public key, spread so that the first
 * two characters read "SU" for a user. The Ed25519 arithmetic is OpenSSL's,
 * for key generation, the derivation of the public key and the signature
 * of the server's nonce (mr_nats_opts.c signs with it rather than with
 * libnats, see there). Secret bytes are wiped after use.
 */
#include "mr_nkey.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PREFIX_SEED 18 << 3 /* 'S' */
#define PREFIX_USER 20 << 3 /* 'U' */
#define KEY_LEN     32
#define SEED_RAW    (2 + KEY_LEN + 2)
#define PUBLIC_RAW  (1 + KEY_LEN + 2)

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static void b32_encode(const unsigned char *in, size_t n, char *out)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buf = buf << 8 | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32_alphabet[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = b32_alphabet[(buf << (5 - bits)) & 31];
    out[o] = '\0';
}

/* Decode exactly `n` output bytes from `in`; -1 on a character outside the alphabet. */
static int b32_decode(const char *in, size_t inlen, unsigned char *out, size_t n)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        const char *p = strchr(b32_alphabet, in[i]);
        if (!in[i] || !p)
            return -1;
        buf = buf << 5 | (unsigned)(p - b32_alphabet);
        bits += 5;
        if (bits >= 8) {
            if (o < n)
                out[o++] = (unsigned char)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    return o == n ? 0 : -1;
}

static void encode_with_crc(unsigned char *raw, size_t n, char *out)
{
    uint16_t crc = crc16(raw, n - 2);
    raw[n - 2] = (unsigned char)(crc & 0xff);
    raw[n - 1] = (unsigned char)(crc >> 8);
    b32_encode(raw, n, out);
}

static bool crc_ok(const unsigned char *raw, size_t n)
{
    uint16_t crc = crc16(raw, n - 2);
    return raw[n - 2] == (crc & 0xff) && raw[n - 1] == (crc >> 8);
}

static int public_of(const unsigned char key[KEY_LEN], char pub[MR_NKEY_PUBLIC_LEN + 1])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key, KEY_LEN);
    unsigned char raw[PUBLIC_RAW];
    size_t len = KEY_LEN;
    int rc = pk && EVP_PKEY_get_raw_public_key(pk, raw + 1, &len) == 1 && len == KEY_LEN ? 0 : -1;
    EVP_PKEY_free(pk);
    if (rc == 0) {
        raw[0] = PREFIX_USER;
        encode_with_crc(raw, sizeof raw, pub);
    }
    return rc;
}

int mr_nkey_generate(char seed[MR_NKEY_SEED_LEN + 1], char pub[MR_NKEY_PUBLIC_LEN + 1])
{
    unsigned char raw[SEED_RAW];
    raw[0] = (unsigned char)(PREFIX_SEED | (PREFIX_USER >> 5));
    raw[1] = (unsigned char)((PREFIX_USER & 31) << 3);
    int rc = RAND_bytes(raw + 2, KEY_LEN) == 1 ? public_of(raw + 2, pub) : -1;
    if (rc == 0)
        encode_with_crc(raw, sizeof raw, seed);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

/* Decode an encoded user seed into its raw form (prefix, key, checksum).
 * Returns 0, or -1 when it is not one; the caller wipes `raw`. */
static int decode_seed(const char *seed, unsigned char raw[SEED_RAW])
{
    return strlen(seed) == MR_NKEY_SEED_LEN &&
                   b32_decode(seed, MR_NKEY_SEED_LEN, raw, SEED_RAW) == 0 &&
                   crc_ok(raw, SEED_RAW) &&
                   raw[0] == (unsigned char)(PREFIX_SEED | (PREFIX_USER >> 5)) &&
                   raw[1] == (unsigned char)((PREFIX_USER & 31) << 3)
               ? 0
               : -1;
}

int mr_nkey_public_from_seed(const char *seed, char pub[MR_NKEY_PUBLIC_LEN + 1])
{
    unsigned char raw[SEED_RAW];
    int rc = decode_seed(seed, raw) == 0 ? public_of(raw + 2, pub) : -1;
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

int mr_nkey_sign(const char *seed, const unsigned char *msg, size_t len,
                 unsigned char sig[MR_NKEY_SIG_LEN])
{
    unsigned char raw[SEED_RAW];
    int rc = -1;
    if (decode_seed(seed, raw) == 0) {
        EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 2, KEY_LEN);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n = MR_NKEY_SIG_LEN;
        if (pk && ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
            EVP_DigestSign(ctx, sig, &n, msg, len) == 1 && n == MR_NKEY_SIG_LEN)
            rc = 0;
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pk);
    }
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

bool mr_nkey_public_valid(const char *pub)
{
    unsigned char raw[PUBLIC_RAW];
    return strlen(pub) == MR_NKEY_PUBLIC_LEN &&
           b32_decode(pub, MR_NKEY_PUBLIC_LEN, raw, sizeof raw) == 0 && raw[0] == PREFIX_USER &&
           crc_ok(raw, sizeof raw);
}

int mr_nkey_read_seed_file(const char *path, char pub[MR_NKEY_PUBLIC_LEN + 1], char *err,
                           size_t errlen)
{
    char seed[MR_NKEY_SEED_LEN + 1];
    int rc = mr_nkey_load_seed_file(path, seed, err, errlen);
    if (rc == 0)
        rc = mr_nkey_public_from_seed(seed, pub);
    OPENSSL_cleanse(seed, sizeof seed);
    return rc;
}

int mr_nkey_load_seed_file(const char *path, char seed[MR_NKEY_SEED_LEN + 1], char *err,
                           size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    int rc = -1;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = line + strspn(line, " \t");
        if (p[0] != 'S' || p[1] != 'U')
            continue;
        found = true;
        /* The rest of the line is the seed (as libnats and NATS tools read
         * it): nothing may follow it. */
        p[strcspn(p, "\n")] = '\0';
        unsigned char raw[SEED_RAW];
        if (decode_seed(p, raw) == 0) {
            memcpy(seed, p, MR_NKEY_SEED_LEN + 1);
            rc = 0;
        } else {
            snprintf(err, errlen,
                     "%s: the line starting with \"SU\" is not a valid user seed (%d characters "
                     "of base32 with a checksum, nothing after it on the line)",
                     path, MR_NKEY_SEED_LEN);
        }
        OPENSSL_cleanse(raw, sizeof raw);
    }
    OPENSSL_cleanse(line, sizeof line);
    (void)fclose(f); /* opened to read only */
    if (!found)
        snprintf(err, errlen, "%s holds no NATS user seed (a line starting with \"SU\")", path);
    return rc;
}
