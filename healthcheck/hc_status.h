/*
 * The agent's HTTP face: /v1/status (JSON), the HTML dashboard at /,
 * /metrics, /healthz, /readyz, and the drain API
 * (POST /v1/regions/{region}/drain and /undrain, with X-API-Key).
 */
#ifndef HC_STATUS_H
#define HC_STATUS_H

struct evhttp;
typedef struct hc_agent hc_agent;

/** Register every route on `http`. */
void hc_status_attach(struct evhttp *http, hc_agent *a);

#endif
