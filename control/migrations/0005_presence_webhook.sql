-- Version 5: webhooks for presence changes (docs/control.md, "Webhooks").
--
-- Relays publish, per room, how many sessions a user has on them
-- (meridian.presence.<room>, with a seq that numbers each relay process's
-- deltas). Every control plane with "presence" in webhook.events applies
-- what it receives here (ctl_presence.c); they all share this database, so
-- a user's presence changes once whichever of them applies a delta first,
-- and the copies the others apply are recognised by their seq and change
-- nothing. A user joins a room when the sum of their sessions over all
-- relays goes from 0 to more, and leaves when it drops back to 0: each such
-- change is one outbox row, sent like a committed message.
--
-- presence_nodes     relay processes heard of; gone_at is set when one
--                    said bye or stopped heartbeating: its users leave and
--                    anything it still sends is ignored (a restarted relay
--                    has a new id). Gone rows are pruned after a day.
-- presence_sessions  sessions per (room, user, relay process) and the seq
--                    of the delta that set them; rows at 0 stay a while so
--                    that a late copy of an older delta is recognised.
-- presence_users     the user's total in the room (no row: 0); its row
--                    lock serialises every change of that total.
ALTER TABLE webhook_outbox
    ALTER COLUMN seq DROP NOT NULL,
    ALTER COLUMN msg_id DROP NOT NULL,
    ADD COLUMN event text;

-- What the sender's webhook.events asks for; set by the sender.
ALTER TABLE webhook_state
    ADD COLUMN messages boolean NOT NULL DEFAULT true,
    ADD COLUMN presence boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION meridian_webhook_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF (SELECT enabled AND messages FROM webhook_state) THEN
        INSERT INTO webhook_outbox (room, seq, msg_id)
            SELECT n.room, n.seq, n.msg_id FROM new_ids n ORDER BY n.room, n.seq;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TABLE presence_nodes (
    node      text COLLATE "C" PRIMARY KEY,
    last_seen timestamptz NOT NULL,
    gone_at   timestamptz
);

CREATE TABLE presence_sessions (
    room       text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    node       text COLLATE "C" NOT NULL,
    seq        bigint  NOT NULL,
    sessions   integer NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room, user_id, node)
);
CREATE INDEX presence_sessions_node ON presence_sessions (node);

CREATE TABLE presence_users (
    room     text COLLATE "C" NOT NULL,
    user_id  text COLLATE "C" NOT NULL,
    sessions bigint NOT NULL,
    PRIMARY KEY (room, user_id)
);

-- One presence event into the outbox, when the sender wants them. The id
-- is random and stored with the row, so every retry carries the same one.
CREATE FUNCTION meridian_presence_event(p_room text, p_user text, p_type text,
                                        p_sessions bigint, p_reason text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF (SELECT enabled AND presence FROM webhook_state) THEN
        INSERT INTO webhook_outbox (room, event) VALUES (p_room, json_strip_nulls(json_build_object(
            'id', replace(gen_random_uuid()::text, '-', ''),
            'type', p_type, 'room', p_room, 'user', p_user, 'sessions', p_sessions,
            'reason', p_reason,
            'ts', (extract(epoch FROM clock_timestamp()) * 1000)::bigint))::text);
    END IF;
END
$fn$;

-- Set one relay process's sessions of a user in a room, unless a delta at
-- least as new (seq) was applied already; returns 1 when applied, 0 when
-- it was a stale or repeated copy.
CREATE FUNCTION meridian_presence_apply(p_room text, p_user text, p_node text, p_seq bigint,
                                        p_sessions integer, p_reason text)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    total bigint;
    prev_seq bigint;
    prev_sessions integer;
    after bigint;
BEGIN
    LOOP
        SELECT u.sessions INTO total FROM presence_users u
            WHERE u.room = p_room AND u.user_id = p_user FOR UPDATE;
        EXIT WHEN FOUND;
        INSERT INTO presence_users VALUES (p_room, p_user, 0) ON CONFLICT DO NOTHING;
    END LOOP;
    SELECT s.seq, s.sessions INTO prev_seq, prev_sessions FROM presence_sessions s
        WHERE s.room = p_room AND s.user_id = p_user AND s.node = p_node;
    IF FOUND AND prev_seq >= p_seq THEN
        IF total = 0 THEN
            DELETE FROM presence_users WHERE room = p_room AND user_id = p_user;
        END IF;
        RETURN 0;
    END IF;
    after := total - coalesce(prev_sessions, 0) + p_sessions;
    INSERT INTO presence_sessions (room, user_id, node, seq, sessions)
        VALUES (p_room, p_user, p_node, p_seq, p_sessions)
        ON CONFLICT (room, user_id, node) DO UPDATE
        SET seq = EXCLUDED.seq, sessions = EXCLUDED.sessions, changed_at = now();
    IF after > 0 THEN
        UPDATE presence_users SET sessions = after WHERE room = p_room AND user_id = p_user;
    ELSE
        DELETE FROM presence_users WHERE room = p_room AND user_id = p_user;
    END IF;
    IF total = 0 AND after > 0 THEN
        PERFORM meridian_presence_event(p_room, p_user, 'presence.join', after, NULL);
    ELSIF total > 0 AND after <= 0 THEN
        PERFORM meridian_presence_event(p_room, p_user, 'presence.leave', 0, p_reason);
    END IF;
    RETURN 1;
END
$fn$;

-- A delta from a relay process. The node's row is locked first (by the
-- upsert), as meridian_presence_drop does, so a delta and the node's drop
-- never interleave: a node that is gone stays gone.
CREATE FUNCTION meridian_presence_set(p_room text, p_user text, p_node text, p_seq bigint,
                                      p_sessions integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    gone timestamptz;
BEGIN
    INSERT INTO presence_nodes (node, last_seen) VALUES (p_node, now())
        ON CONFLICT (node) DO UPDATE SET last_seen = now()
        RETURNING gone_at INTO gone;
    IF gone IS NOT NULL THEN
        RETURN 0;
    END IF;
    RETURN meridian_presence_apply(p_room, p_user, p_node, p_seq, p_sessions, 'left');
END
$fn$;

-- A heartbeat: the node is alive (only a node with users has a row).
CREATE FUNCTION meridian_presence_seen(p_node text) RETURNS void
LANGUAGE sql AS $fn$
    UPDATE presence_nodes SET last_seen = now() WHERE node = p_node AND gone_at IS NULL;
$fn$;

-- A relay process is gone (p_reason: relay_stopped after its bye,
-- relay_lost when its heartbeats stopped): each of its users whose total
-- drops to 0 leaves. Returns how many entries it dropped; 0 when the node
-- was gone already (another control plane dropped it first).
CREATE FUNCTION meridian_presence_drop(p_node text, p_reason text) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    s record;
    n integer := 0;
BEGIN
    UPDATE presence_nodes SET gone_at = now() WHERE node = p_node AND gone_at IS NULL;
    IF NOT FOUND THEN
        INSERT INTO presence_nodes (node, last_seen, gone_at) VALUES (p_node, now(), now())
            ON CONFLICT (node) DO NOTHING;
        RETURN 0;
    END IF;
    FOR s IN SELECT room, user_id FROM presence_sessions
             WHERE node = p_node AND sessions > 0 ORDER BY room, user_id LOOP
        PERFORM meridian_presence_apply(s.room, s.user_id, p_node, 9223372036854775807, 0,
                                        p_reason);
        n := n + 1;
    END LOOP;
    DELETE FROM presence_sessions WHERE node = p_node;
    RETURN n;
END
$fn$;

-- Housekeeping, run by every presence-tracking control plane about once a
-- second (each node's drop in its own transaction, by the caller): prune
-- what no delta can need any more.
CREATE FUNCTION meridian_presence_prune() RETURNS void
LANGUAGE sql AS $fn$
    DELETE FROM presence_nodes WHERE gone_at < now() - interval '1 day';
    DELETE FROM presence_sessions WHERE sessions = 0 AND changed_at < now() - interval '10 minutes';
$fn$;
