/*
 * NATS user nkeys: Ed25519 key pairs in NATS's printable encoding. The seed
 * ("SU...", 58 characters) is the secret a daemon keeps in a file; the
 * public key ("U...", 56 characters) is all a nats-server configuration
 * holds, so a server config leaks no credential.
 */
#ifndef MR_NKEY_H
#define MR_NKEY_H

#include <stdbool.h>
#include <stddef.h>

#define MR_NKEY_SEED_LEN   58 /* characters of an encoded user seed */
#define MR_NKEY_PUBLIC_LEN 56 /* characters of an encoded user public key */
#define MR_NKEY_SIG_LEN    64 /* bytes of an Ed25519 signature */

/**
 * Generate a user key pair from the system's random source: `seed` gets
 * the encoded seed and `pub` the encoded public key, both NUL-terminated.
 * Returns 0, or -1 when OpenSSL cannot make the key.
 */
int mr_nkey_generate(char seed[MR_NKEY_SEED_LEN + 1], char pub[MR_NKEY_PUBLIC_LEN + 1]);

/**
 * Derive the public key of an encoded user seed. Returns 0, or -1 when `seed`
 * is not a user seed (length, alphabet, prefix or checksum).
 */
int mr_nkey_public_from_seed(const char *seed, char pub[MR_NKEY_PUBLIC_LEN + 1]);

/**
 * Sign `msg` with the key of an encoded user seed (Ed25519, as nats-server
 * verifies a connection's nonce). Returns 0, or -1 when `seed` is not a user
 * seed or OpenSSL fails.
 */
int mr_nkey_sign(const char *seed, const unsigned char *msg, size_t len,
                 unsigned char sig[MR_NKEY_SIG_LEN]);

/** True when `pub` is an encoded user public key with a valid checksum. */
bool mr_nkey_public_valid(const char *pub);

/**
 * Read a seed file: the first line that, after leading blanks, starts with
 * "SU" must be exactly one user seed (the plain form written by
 * `meridian-regions nkeys` and the decorated form of NATS tools both work).
 * Fills `pub` with its public key. Returns 0, or -1 with `err` saying what
 * is wrong (never quoting the file's contents).
 */
int mr_nkey_read_seed_file(const char *path, char pub[MR_NKEY_PUBLIC_LEN + 1], char *err,
                           size_t errlen);

/**
 * The same, giving the encoded seed itself (the caller wipes it with
 * OPENSSL_cleanse after use).
 */
int mr_nkey_load_seed_file(const char *path, char seed[MR_NKEY_SEED_LEN + 1], char *err,
                           size_t errlen);

#endif
