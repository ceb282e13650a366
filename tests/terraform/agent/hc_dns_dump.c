/*
 * hc_dns_dump lua|route53 REGIONS_FILE
 *
 * Prints what the health agent writes for a regions file when every region
 * and relay is healthy: the PowerDNS LUA record (hc_dns_pdns_lua) or the
 * Route 53 ChangeResourceRecordSets request (hc_dns_route53_request:
 * geolocation sets and region names), so that
 * tests/terraform/run.sh crosscheck can compare them with the records the
 * topology module gives terraform to create before any agent runs.
 */
#include "hc_dns.h"
#include "mr_regions.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "lua") != 0 && strcmp(argv[1], "route53") != 0)) {
        fprintf(stderr, "usage: hc_dns_dump lua|route53 REGIONS_FILE\n");
        return 2;
    }
    char err[512];
    mr_regions *r = mr_regions_load(argv[2], err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    hc_dns_plan plan;
    hc_dns_plan_build(&plan, r, NULL, NULL);
    mr_buf out = MR_BUF_INIT;
    if (strcmp(argv[1], "lua") == 0)
        hc_dns_pdns_lua(&plan, &out);
    else
        hc_dns_route53_request(&plan, "crosscheck", &out);
    /* The output is what the cross-check compares: a lost part must fail. */
    int rc = 0;
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0) {
        fprintf(stderr, "hc_dns_dump: cannot write the output: %s\n", strerror(errno));
        rc = 1;
    }
    mr_buf_free(&out);
    hc_dns_plan_free(&plan);
    mr_regions_free(r);
    return rc;
}
