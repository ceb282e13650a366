/* The suites of test_common, one per shared module; test_main.c runs them all. */
#ifndef TEST_SUITES_H
#define TEST_SUITES_H

#include <check.h>

Suite *jwt_suite(void);
Suite *proto_suite(void);
Suite *ratelimit_suite(void);
Suite *config_suite(void);
Suite *map_suite(void);
Suite *json_scan_suite(void);
Suite *nats_opts_suite(void);
Suite *admin_suite(void);
Suite *log_suite(void);
Suite *metrics_suite(void);
Suite *alloc_suite(void);

#endif
