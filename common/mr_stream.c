/*
 * Region streams. mr_stream_ensure() (the owner's call) reads the stream's
 * current configuration first: when it is absent the stream is added, when
 * its limits differ it is updated, and when they match nothing is sent, so
 * that every relay can call it at start without churning the stream.
 * mr_stream_check() (everyone else's) only reads and compares: a second
 * writer of the configuration is how a control plane with a one-hour
 * max_age once cut a week of retention to an hour. File storage and limits
 * retention are fixed: the stream is the durable buffer between a relay's
 * PubAck and the control plane's database commit.
 */
#include "mr_stream.h"
#include "mr_buf.h"
#include "mr_log.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_S 1000000000LL

void mr_stream_config_init(mr_stream_config *cfg)
{
    cfg->max_age_s = 7 * 24 * 3600;
    cfg->max_bytes = 10LL * 1024 * 1024 * 1024;
    cfg->duplicate_window_s = 120;
    cfg->replicas = 1;
    cfg->placement = NULL;
}

void mr_stream_config_unset(mr_stream_config *cfg)
{
    cfg->max_age_s = -1;
    cfg->max_bytes = -1;
    cfg->duplicate_window_s = -1;
    cfg->replicas = 0;
    cfg->placement = NULL;
}

void mr_stream_name(const char *region, char *out, size_t n)
{
    if (n == 0)
        return;
    size_t o = (size_t)snprintf(out, n, "MERIDIAN_");
    for (const char *p = region; *p && o + 1 < n; p++)
        out[o++] = (char)(*p == '-' ? '_' : toupper((unsigned char)*p));
    if (o < n)
        out[o] = '\0';
    else
        out[n - 1] = '\0';
}

void mr_stream_subjects(const char *region, char *out, size_t n)
{
    snprintf(out, n, "meridian.msg.%s.>", region);
}

static bool has_placement(const mr_stream_config *cfg)
{
    return cfg->placement && cfg->placement[0];
}

/* Bytes as the configuration says them: 0 is unlimited, as the server's -1. */
static int64_t config_bytes(int64_t server_bytes)
{
    return server_bytes < 0 ? 0 : server_bytes;
}

/*
 * Append to `out` each way `have` differs from `want` ("max_age 604800 s
 * (configured 3600 s)", comma-separated). Members of `want` below zero (0
 * replicas, NULL placement) are not compared; subjects and storage always
 * are. Returns the number of differences.
 */
static int differences(const jsStreamConfig *have, const mr_stream_config *want,
                       const char *subject, mr_buf *out)
{
    int n = 0;
#define DIFF(...)                                                                                  \
    do {                                                                                           \
        mr_buf_puts(out, n++ ? ", " : "");                                                         \
        mr_buf_printf(out, __VA_ARGS__);                                                           \
    } while (0)
    if (have->SubjectsLen != 1 || strcmp(have->Subjects[0], subject) != 0)
        DIFF("subjects are not exactly %s", subject);
    if (have->Storage != js_FileStorage)
        DIFF("storage is not file");
    if (have->Retention != js_LimitsPolicy)
        DIFF("retention is not limits");
    if (want->max_age_s >= 0 && have->MaxAge != want->max_age_s * NS_PER_S)
        DIFF("max_age %lld s (configured %lld s)", (long long)(have->MaxAge / NS_PER_S),
             (long long)want->max_age_s);
    if (want->max_bytes >= 0 && config_bytes(have->MaxBytes) != want->max_bytes)
        DIFF("max_bytes %lld (configured %lld)", (long long)config_bytes(have->MaxBytes),
             (long long)want->max_bytes);
    if (want->duplicate_window_s >= 0 && have->Duplicates != want->duplicate_window_s * NS_PER_S)
        DIFF("duplicate_window %lld s (configured %lld s)",
             (long long)(have->Duplicates / NS_PER_S), (long long)want->duplicate_window_s);
    if (want->replicas > 0 && have->Replicas != want->replicas)
        DIFF("replicas %lld (configured %d)", (long long)have->Replicas, want->replicas);
    const char *hc = have->Placement ? have->Placement->Cluster : NULL;
    /* No wish for a placement accepts whatever placement the server chose. */
    if (want->placement && want->placement[0] && !(hc && strcmp(hc, want->placement) == 0))
        DIFF("placement %s (configured %s)", hc && hc[0] ? hc : "none", want->placement);
#undef DIFF
    return n;
}

/* The stream configuration mr_stream_ensure() creates for `cfg`. */
static void stream_config(jsStreamConfig *sc, const char *name, const char **subjects,
                          const mr_stream_config *cfg, jsPlacement *pl)
{
    jsStreamConfig_Init(sc);
    sc->Name = name;
    sc->Subjects = subjects;
    sc->SubjectsLen = 1;
    sc->Storage = js_FileStorage;
    sc->Retention = js_LimitsPolicy;
    sc->Discard = js_DiscardOld;
    sc->MaxAge = cfg->max_age_s * NS_PER_S;
    sc->MaxBytes = cfg->max_bytes > 0 ? cfg->max_bytes : -1;
    sc->Duplicates = cfg->duplicate_window_s * NS_PER_S;
    sc->Replicas = cfg->replicas > 0 ? cfg->replicas : 1;
    if (has_placement(cfg)) {
        pl->Cluster = cfg->placement;
        sc->Placement = pl;
    }
}

int mr_stream_ensure(jsCtx *js, const char *region, const mr_stream_config *cfg, char *err,
                     size_t errlen)
{
    char name[MR_STREAM_NAME_MAX], subj[MR_STREAM_NAME_MAX];
    mr_stream_name(region, name, sizeof name);
    mr_stream_subjects(region, subj, sizeof subj);
    const char *subjects[1] = {subj};

    jsStreamConfig sc;
    jsPlacement pl = {0};
    stream_config(&sc, name, subjects, cfg, &pl);
    /* What the owner wants, as expectations: every member compared. */
    mr_stream_config want = *cfg;
    if (want.replicas <= 0)
        want.replicas = 1;

    /*
     * Two processes may start together: both may see "not found" and both
     * add. The loser gets "stream name already in use" and simply retries
     * the read-compare-update path, hence the small bounded loop.
     */
    for (int attempt = 0; attempt < 3; attempt++) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
        if (s == NATS_OK) {
            mr_buf diff = MR_BUF_INIT;
            int n = differences(si->Config, &want, subj, &diff);
            jsStreamInfo_Destroy(si);
            if (n > 0)
                mr_log_warn("stream %s: updating it to this process's configuration: %s", name,
                            diff.data);
            mr_buf_free(&diff);
            if (n == 0)
                return 0;
            jsStreamInfo *ui = NULL;
            s = js_UpdateStream(&ui, js, &sc, NULL, &jerr);
            if (ui)
                jsStreamInfo_Destroy(ui);
            if (s == NATS_OK)
                return 0;
            snprintf(err, errlen, "update stream %s: %s (jetstream error %d)", name,
                     natsStatus_GetText(s), (int)jerr);
            return -1;
        }
        if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
            snprintf(err, errlen, "stream info %s: %s (jetstream error %d)", name,
                     natsStatus_GetText(s), (int)jerr);
            return -1;
        }
        jsStreamInfo *ai = NULL;
        jerr = 0;
        s = js_AddStream(&ai, js, &sc, NULL, &jerr);
        if (ai)
            jsStreamInfo_Destroy(ai);
        if (s == NATS_OK)
            return 0;
        if (jerr != JSStreamNameExistErr) {
            snprintf(err, errlen, "add stream %s: %s (jetstream error %d)", name,
                     natsStatus_GetText(s), (int)jerr);
            return -1;
        }
    }
    snprintf(err, errlen, "stream %s: creation raced repeatedly", name);
    return -1;
}

mr_stream_state mr_stream_check(jsCtx *js, const char *region, const mr_stream_config *want,
                                char *err, size_t errlen)
{
    char name[MR_STREAM_NAME_MAX], subj[MR_STREAM_NAME_MAX];
    mr_stream_name(region, name, sizeof name);
    mr_stream_subjects(region, subj, sizeof subj);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        snprintf(err, errlen, "stream %s does not exist", name);
        return MR_STREAM_ABSENT;
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "stream info %s: %s (jetstream error %d)", name,
                 natsStatus_GetText(s), (int)jerr);
        return MR_STREAM_ERROR;
    }
    mr_buf diff = MR_BUF_INIT;
    int n = differences(si->Config, want, subj, &diff);
    jsStreamInfo_Destroy(si);
    if (n > 0)
        snprintf(err, errlen, "%s", diff.data);
    mr_buf_free(&diff);
    return n > 0 ? MR_STREAM_MISMATCH : MR_STREAM_OK;
}
