/* The suites of test_ctl_unit besides its own; test_ctl_unit.c runs them all. */
#ifndef CTL_SUITES_H
#define CTL_SUITES_H

#include <check.h>

Suite *envelope_suite(void);
Suite *presence_parse_suite(void);

#endif
