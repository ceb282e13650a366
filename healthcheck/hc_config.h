/*
 * The agent's configuration file (docs/healthcheck.md, "Configuration") and
 * the regions file it names.
 */
#ifndef HC_CONFIG_H
#define HC_CONFIG_H

#include <stddef.h>

typedef struct hc_agent hc_agent;

/**
 * Read `path` (and the regions file it names) into the agent's settings.
 * `listen_override` (may be NULL) replaces "listen". Returns 0, or -1 with a
 * message naming the file and the field.
 */
int hc_config_load(hc_agent *a, const char *path, const char *listen_override, char *err,
                   size_t errlen);

#endif
