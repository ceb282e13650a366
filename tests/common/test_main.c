/* Unit tests of the shared modules: one suite per module. */
#include "test_suites.h"
#include <check.h>
#include <stdlib.h>

int main(void)
{
    SRunner *sr = srunner_create(jwt_suite());
    srunner_add_suite(sr, proto_suite());
    srunner_add_suite(sr, ratelimit_suite());
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, json_scan_suite());
    srunner_add_suite(sr, map_suite());
    srunner_add_suite(sr, nats_opts_suite());
    srunner_add_suite(sr, admin_suite());
    srunner_add_suite(sr, log_suite());
    srunner_add_suite(sr, metrics_suite());
    srunner_add_suite(sr, alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
