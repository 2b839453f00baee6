-- Per-key request limits shared by every instance on this database (PostgreSQL only:
-- SQLite installs are one process and keep the limiter in memory). See
-- src/rate_limit/shared.rs.
--
-- GCRA: one row per API key holding its theoretical arrival time (TAT) in
-- microseconds since the Unix epoch. A request at `now` for a key of `rpm` requests per
-- minute (emission interval I = 60 s / rpm, rounded down to a microsecond; window
-- W = I * rpm) passes when max(TAT, now) + I - now <= W, and then moves TAT to
-- max(TAT, now) + I; a refused request changes nothing. So at most `rpm` requests pass
-- in any burst and the bucket refills one request per I, whichever instance answers.
--
-- UNLOGGED: no WAL, so a request's commit waits for no disk flush. After a crash of
-- the database (or on a promoted standby) the table is empty: every key starts with a
-- full bucket again, which is the only state lost.
CREATE UNLOGGED TABLE rate_limits (
    key_id TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL
);

-- Counts one request: whether it passes, and the key's TAT afterwards (when it
-- passed) or as it stands (when refused). One statement per request; concurrent
-- requests for one key serialise on its row.
CREATE FUNCTION rate_limit_take(
    p_key_id TEXT,
    p_now_us BIGINT,
    p_interval_us BIGINT,
    p_window_us BIGINT,
    OUT allowed BOOLEAN,
    OUT tat_after_us BIGINT
) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rate_limits AS r (key_id, tat_us)
    VALUES (p_key_id, p_now_us + p_interval_us)
    ON CONFLICT (key_id) DO UPDATE
        SET tat_us = GREATEST(r.tat_us, p_now_us) + p_interval_us
        WHERE GREATEST(r.tat_us, p_now_us) + p_interval_us - p_now_us <= p_window_us
    RETURNING r.tat_us INTO tat_after_us;
    IF FOUND THEN
        allowed := TRUE;
        RETURN;
    END IF;
    -- Refused: the row exists and is locked by the statement above, so this reads the
    -- latest TAT (for Retry-After).
    allowed := FALSE;
    SELECT r.tat_us INTO tat_after_us FROM rate_limits r WHERE r.key_id = p_key_id;
END;
$$;
