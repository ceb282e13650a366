-- Version 4: webhooks for committed messages (docs/control.md, "Webhooks").
--
-- webhook_outbox  one row per message committed while webhooks are enabled,
--                 written by a trigger in the very transaction that stores
--                 the message, so a message is in the outbox if and only if
--                 it is committed. The sender (ctl_webhook.c) reads the
--                 oldest rows, POSTs them and deletes them once the
--                 receiver answered 2xx: what is left is the durable
--                 progress, and a restarted control plane resumes there.
--                 Rows are deleted rather than a cursor kept, because ids
--                 are taken before commit: a transaction holding id 5 may
--                 commit after one holding id 6 was delivered, and a cursor
--                 at 6 would skip it for ever. Per room, ids follow seqs:
--                 the room's row lock orders its transactions.
-- webhook_state   one row: whether the trigger fills the outbox (set by a
--                 control plane started with webhook.url) and the id of the
--                 last row delivered, for operators.
CREATE TABLE webhook_outbox (
    id     bigserial PRIMARY KEY,
    room   text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL,
    msg_id uuid   NOT NULL
);

CREATE TABLE webhook_state (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    enabled   boolean NOT NULL DEFAULT false,
    delivered bigint  NOT NULL DEFAULT 0
);
INSERT INTO webhook_state DEFAULT VALUES;

-- One statement-level trigger per ingest batch: with webhooks disabled it
-- costs one lookup of webhook_state per batch; a batch rolled back (its
-- identities already stored, see 0003) takes its outbox rows with it.
CREATE FUNCTION meridian_webhook_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF (SELECT enabled FROM webhook_state) THEN
        INSERT INTO webhook_outbox (room, seq, msg_id)
            SELECT n.room, n.seq, n.msg_id FROM new_ids n ORDER BY n.room, n.seq;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER message_ids_webhook AFTER INSERT ON message_ids
    REFERENCING NEW TABLE AS new_ids
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_webhook_enqueue();
