/*
 * Region streams. mr_stream_ensure() reads the stream's current
 * configuration first: when it is absent the stream is added, when its
 * limits differ it is updated, and when they match nothing is sent, so that
 * every daemon can call it at start without churning the stream. File
 * storage and limits retention are fixed: the stream is the durable buffer
 * between a relay's PubAck and the control plane's database commit.
 */
#include "mr_stream.h"

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

void mr_stream_name(const char *region, char *out, size_t n)
{
    if (n == 0)
        return;
    size_t o = (size_t)snprintf(out, n, "MERIDIAN_");
    for (const char *p = region; *p && o + 1 < n; p++)
        out[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
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

/* True when the live stream already has the wanted configuration. */
static bool same_config(const jsStreamConfig *have, const jsStreamConfig *want)
{
    if (have->MaxAge != want->MaxAge || have->MaxBytes != want->MaxBytes ||
        have->Duplicates != want->Duplicates || have->Replicas != want->Replicas ||
        have->Storage != want->Storage || have->SubjectsLen != 1 ||
        strcmp(have->Subjects[0], want->Subjects[0]) != 0)
        return false;
    const char *hc = have->Placement ? have->Placement->Cluster : NULL;
    const char *wc = want->Placement ? want->Placement->Cluster : NULL;
    if (!wc)
        return true; /* no wish: accept whatever placement the server chose */
    return hc && strcmp(hc, wc) == 0;
}

int mr_stream_ensure(jsCtx *js, const char *region, const mr_stream_config *cfg, char *err,
                     size_t errlen)
{
    char name[MR_STREAM_NAME_MAX], subj[MR_STREAM_NAME_MAX];
    mr_stream_name(region, name, sizeof name);
    mr_stream_subjects(region, subj, sizeof subj);
    const char *subjects[1] = {subj};

    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Discard = js_DiscardOld;
    sc.MaxAge = cfg->max_age_s * NS_PER_S;
    sc.MaxBytes = cfg->max_bytes > 0 ? cfg->max_bytes : -1;
    sc.Duplicates = cfg->duplicate_window_s * NS_PER_S;
    sc.Replicas = cfg->replicas > 0 ? cfg->replicas : 1;
    jsPlacement pl = {0};
    if (has_placement(cfg)) {
        pl.Cluster = cfg->placement;
        sc.Placement = &pl;
    }

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
            bool same = same_config(si->Config, &sc);
            jsStreamInfo_Destroy(si);
            if (same)
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
