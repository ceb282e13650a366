-- Version 2: meridian_maintain looked partitions up with to_regclass(name)
-- on an unquoted name containing an upper-case letter, which PostgreSQL
-- folds to lower case, so an existing partition was not found and its
-- creation failed ("relation already exists") on every run after the
-- first. Partition names are now all lower case, and existing ones are
-- looked up with the name quoted, so partitions created by version 1 are
-- recognised too.
CREATE OR REPLACE FUNCTION meridian_maintain(p_interval interval, p_ahead int, p_retention interval)
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    origin  constant timestamptz := '2000-01-03 00:00:00+00'; -- a Monday, for weekly bins
    start_t timestamptz := date_bin(p_interval, now(), origin);
    t       timestamptz;
    name    text;
    v1_name text;
    dropped int := 0;
    part    record;
    upper_t timestamptz;
BEGIN
    FOR k IN 0 .. p_ahead LOOP
        t := start_t + p_interval * k;
        name := 'messages_p' || to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MI');
        v1_name := 'messages_p' || to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MI');
        IF to_regclass(quote_ident(name)) IS NULL AND to_regclass(quote_ident(v1_name)) IS NULL THEN
            -- After a change of interval a new range may overlap an
            -- existing partition; that partition already covers the time.
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%L) TO (%L)',
                               name, t, t + p_interval);
            EXCEPTION WHEN invalid_object_definition OR duplicate_table THEN
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
