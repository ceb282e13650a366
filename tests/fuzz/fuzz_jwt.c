/*
 * libFuzzer target for the JWT validator: arbitrary tokens must be refused
 * or accepted without crashing, and an accepted token must carry a subject.
 */
#include "fuzz_target.h"
#include "mr_jwt.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char secret[] = "fuzz-secret";
    mr_jwt_params p = {.secret = secret, .secret_len = sizeof secret - 1, .leeway_s = 5};
    mr_jwt_claims c;
    if (mr_jwt_verify(&p, (const char *)data, size, 1700000000, &c) == MR_JWT_OK) {
        if (!c.sub || !c.sub[0])
            abort();
        mr_jwt_claims_free(&c);
    }
    return 0;
}
