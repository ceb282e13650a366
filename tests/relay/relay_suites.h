/* The suites of test_relay_unit besides its own; test_relay_unit.c runs them all. */
#ifndef RELAY_SUITES_H
#define RELAY_SUITES_H

#include <check.h>

Suite *relay_conn_suite(void);
Suite *relay_deliver_suite(void);
Suite *relay_repair_suite(void);
Suite *relay_presence_suite(void);
Suite *relay_once_suite(void);
Suite *relay_join_suite(void);
Suite *relay_publish_suite(void);
Suite *relay_rewind_suite(void);
Suite *relay_refresh_suite(void);
Suite *relay_signal_suite(void);

#endif
