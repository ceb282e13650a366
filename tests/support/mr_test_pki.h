/*
 * Test support for locked NATS: a certificate authority and certificates
 * made with the openssl CLI, NATS user nkeys per role and region, and the
 * `nats` section a daemon of a role needs to connect to a locked server.
 */
#ifndef MR_TEST_PKI_H
#define MR_TEST_PKI_H

#include "mr_nats_perms.h"

#include <stddef.h>

typedef struct mr_test_pki {
    char dir[512];
    char ca[600], ca_key[600];
    /* For the servers: serverAuth and clientAuth (routes and gateways dial too), IP SANs. */
    char cert[600], key[600];
    /* For the daemons (mutual TLS): clientAuth. */
    char client_cert[600], client_key[600];
    /* A second CA that signed nothing the servers know, and a client certificate of its own. */
    char other_ca[600], other_cert[600], other_key[600];
} mr_test_pki;

/**
 * Make the CA, a server certificate valid for 127.0.0.1 and `hosts` (IP
 * literals), a client certificate, and the untrusted second CA with its own
 * client certificate, all in `dir`. Aborts the test on failure.
 */
void mr_test_pki_make(mr_test_pki *p, const char *dir, const char *const *hosts, size_t nhosts);

/**
 * Make (with mr_nkey_generate) the nkey of every role in every region in
 * `dir`: ROLE-REGION.nk (seed) and ROLE-REGION.pub, as
 * `meridian-regions nkeys` does. Fills `pubs` (nregions * MR_NATS_NROLES
 * strings of MR_NKEY_PUBLIC_LEN + 1 bytes, malloc'd; free each) in the
 * order mr_nats_accounts_render() reads.
 */
void mr_test_nkeys_make(const char *dir, const char *const *regions, size_t nregions, char **pubs);

/**
 * The `nats` value (JSON, malloc'd) for a daemon of `role` in `region`:
 * `url`, the role's seed from `keys_dir`, and TLS with the PKI's CA and
 * client certificate.
 */
char *mr_test_nats_json_locked(const char *url, const mr_test_pki *p, const char *keys_dir,
                               mr_nats_role role, const char *region);

#endif
