-- Meridian control plane schema, version 1.
--
-- rooms        one row per room: the last sequence number handed out. Its
--              row lock serialises sequencing of a room across every
--              control instance.
-- message_ids  the message identity (room, msg_id) -> seq. Unique, and not
--              partitioned: a unique constraint on a partitioned table must
--              contain the partition key, and no time column of a message
--              is stable across retries (the relay stamps ts per attempt).
--              Narrow rows, pruned with the same retention as messages.
-- messages     the history, partitioned by range of stored_at (time of the
--              database commit) so retention drops whole partitions. The
--              primary key (room, seq, stored_at) is the only index: it
--              serves history reads by room and seq range.

CREATE TABLE rooms (
    room     text COLLATE "C" PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE message_ids (
    room      text COLLATE "C" NOT NULL,
    msg_id    uuid        NOT NULL,
    seq       bigint      NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room, msg_id)
);
-- Rows arrive in stored_at order, so a BRIN index makes pruning cheap
-- while costing almost nothing on the append path.
CREATE INDEX message_ids_stored_at ON message_ids USING brin (stored_at);

CREATE TABLE messages (
    room      text COLLATE "C" NOT NULL,
    seq       bigint      NOT NULL,
    msg_id    uuid        NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    envelope  text        NOT NULL,
    PRIMARY KEY (room, seq, stored_at)
) PARTITION BY RANGE (stored_at);

-- Rows outside every range partition land here rather than failing the
-- batch; maintenance creates partitions ahead so it normally stays empty.
CREATE TABLE messages_default PARTITION OF messages DEFAULT;

-- Ingest one batch. Inputs are parallel arrays in stream order; the caller
-- passes each (room, msg_id) at most once (it folds duplicates within a
-- batch itself). Returns, for every input position (1-based), the
-- message's sequence number and whether this call stored it (false for a
-- message already stored, whose existing seq is returned so its commit can
-- be republished identically).
--
-- Concurrency: the rows of the batch's rooms are locked in room order
-- before identities are looked up, so two instances handling the same
-- message (a redelivery racing the first delivery) serialise here and the
-- second sees the first's identity rows; the unique key on message_ids is
-- the backstop. Wide envelopes are not carried through the sorts: they are
-- fetched by position only when inserted.
CREATE FUNCTION meridian_ingest(p_rooms text[], p_ids text[], p_envs text[])
RETURNS TABLE (ord bigint, seq bigint, fresh boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO rooms (room)
        SELECT DISTINCT r FROM unnest(p_rooms) AS r ORDER BY 1
        ON CONFLICT (room) DO NOTHING;
    PERFORM 1 FROM rooms WHERE room = ANY (p_rooms) ORDER BY room FOR UPDATE;

    RETURN QUERY
    WITH inp AS (
        SELECT t.room, t.msg_id, t.ord
        FROM unnest(p_rooms, p_ids::uuid[]) WITH ORDINALITY AS t(room, msg_id, ord)
    ), old AS (
        SELECT i.ord, m.seq
        FROM inp i JOIN message_ids m ON m.room = i.room AND m.msg_id = i.msg_id
    ), fresh_in AS (
        SELECT i.room, i.msg_id, i.ord,
               row_number() OVER (PARTITION BY i.room ORDER BY i.ord) AS rn,
               count(*) OVER (PARTITION BY i.room) AS cnt
        FROM inp i
        WHERE NOT EXISTS (SELECT 1 FROM old o WHERE o.ord = i.ord)
    ), bump AS (
        UPDATE rooms r SET last_seq = r.last_seq + c.cnt
        FROM (SELECT fi.room, count(*) AS cnt FROM fresh_in fi GROUP BY fi.room) c
        WHERE r.room = c.room
        RETURNING r.room, r.last_seq
    ), assigned AS (
        SELECT fi.room, fi.msg_id, fi.ord, b.last_seq - fi.cnt + fi.rn AS seq
        FROM fresh_in fi JOIN bump b ON b.room = fi.room
    ), ins_ids AS (
        INSERT INTO message_ids (room, msg_id, seq)
        SELECT a.room, a.msg_id, a.seq FROM assigned a
    ), ins_msgs AS (
        INSERT INTO messages (room, seq, msg_id, envelope)
        SELECT a.room, a.seq, a.msg_id, p_envs[a.ord] FROM assigned a
    )
    SELECT a.ord, a.seq, true FROM assigned a
    UNION ALL
    SELECT o.ord, o.seq, false FROM old o;
END
$fn$;

-- Partition maintenance: create partitions of `p_interval` covering now
-- through `p_ahead` intervals ahead, and drop partitions (and identities)
-- whose whole range is older than `p_retention`. Returns the number of
-- partitions dropped. Partition names encode their start time
-- (messages_p20261128T0000), so the function is idempotent.
CREATE FUNCTION meridian_maintain(p_interval interval, p_ahead int, p_retention interval)
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    origin  constant timestamptz := '2000-01-03 00:00:00+00'; -- a Monday, for weekly bins
    start_t timestamptz := date_bin(p_interval, now(), origin);
    t       timestamptz;
    name    text;
    dropped int := 0;
    part    record;
    upper_t timestamptz;
BEGIN
    FOR k IN 0 .. p_ahead LOOP
        t := start_t + p_interval * k;
        name := 'messages_p' || to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MI');
        IF to_regclass(name) IS NULL THEN
            -- After a change of interval a new range may overlap an
            -- existing partition; that partition already covers the time.
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%L) TO (%L)',
                               name, t, t + p_interval);
            EXCEPTION WHEN invalid_object_definition THEN
                NULL;
            END;
        END IF;
    END LOOP;
    IF p_retention IS NOT NULL THEN
        FOR part IN
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'messages'::regclass AND c.relname LIKE 'messages\_p%'
        LOOP
            upper_t := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
            IF upper_t IS NOT NULL AND upper_t <= now() - p_retention THEN
                EXECUTE format('DROP TABLE %I', part.relname);
                dropped := dropped + 1;
            END IF;
        END LOOP;
        DELETE FROM message_ids WHERE stored_at < now() - p_retention;
    END IF;
    RETURN dropped;
END
$fn$;
