/*
 * Prints the PowerDNS LUA record the health agent writes for a regions file
 * when every region and relay is healthy (hc_dns_plan_build + hc_dns_pdns_lua),
 * so tests/terraform/run.sh crosscheck can compare it with the topology
 * module's dns.lua["A"], which terraform creates before any agent runs.
 */
#include "hc_dns.h"
#include "mr_regions.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hc_lua_dump REGIONS_FILE\n");
        return 2;
    }
    char err[512];
    mr_regions *r = mr_regions_load(argv[1], err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    hc_dns_plan plan;
    hc_dns_plan_build(&plan, r, NULL, NULL);
    mr_buf lua = MR_BUF_INIT;
    hc_dns_pdns_lua(&plan, &lua);
    fwrite(lua.data, 1, lua.len, stdout);
    fputc('\n', stdout);
    mr_buf_free(&lua);
    hc_dns_plan_free(&plan);
    mr_regions_free(r);
    return 0;
}
