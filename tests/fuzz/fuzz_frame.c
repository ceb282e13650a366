/*
 * libFuzzer target for the client frame parser: any bytes must parse or fail
 * cleanly, and whatever parses must serialise back into valid JSON.
 */
#include "fuzz_target.h"
#include "mr_buf.h"
#include "mr_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_frame f;
    mr_proto_err err;
    if (mr_proto_parse((const char *)data, size, &f, &err) != 0) {
        mr_buf b = MR_BUF_INIT;
        mr_proto_error_frame(&b, err.id, err.code, err.message);
        json_t *j = json_loadb(b.data, b.len, 0, NULL);
        if (!j)
            abort();
        json_decref(j);
        mr_buf_free(&b);
        mr_proto_err_free(&err);
        return 0;
    }
    if (f.type == MR_FRAME_PUBLISH) {
        char id[MR_MSG_ID_LEN + 1];
        const char *mid = f.mid ? f.mid : "m";
        mr_msg_id(f.room, f.room_len, "fuzz", mid, f.mid ? f.mid_len : 1, id);
        mr_envelope e = {.room = f.room,
                         .room_len = f.room_len,
                         .msg_id = id,
                         .from = "fuzz",
                         .mid = mid,
                         .mid_len = f.mid ? f.mid_len : 1,
                         .region = "r",
                         .node = "n",
                         .ts_ms = 1,
                         .data_json = f.data,
                         .data_json_len = f.data_len};
        mr_buf b = MR_BUF_INIT;
        mr_proto_message(&b, &e);
        json_t *j = json_loadb(b.data, b.len, 0, NULL);
        if (!j)
            abort();
        json_decref(j);
        mr_buf_free(&b);
    }
    mr_frame_free(&f);
    return 0;
}
