/* The relay's WebSocket server: lws context, protocol callback, drain. */
#ifndef RELAY_SERVER_H
#define RELAY_SERVER_H

#include "relay.h"

#include <stddef.h>

/** Create the lws context and connect to NATS. Returns 0 or -1 with `err`. */
int relay_server_start(relay *r, char *err, size_t errlen);
/** The bound WebSocket port. */
int relay_server_port(relay *r);
/** Run the service loop until stopped, or until a drain has closed every session. */
void relay_server_run(relay *r);
/** Wake the service loop from another thread (after setting r->draining or r->stopping). */
void relay_server_wake(relay *r);
void relay_server_stop(relay *r);

#endif
