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

#endif
