-- Several rate-limit steps in one round trip (see src/rate_limit/shared.rs): an
-- instance sends the steps that queued while its previous batch was in the database,
-- sorted by key id (so concurrent batches lock rows in one order and never deadlock;
-- steps of one key stay in arrival order). Each step is rate_limit_take's, applied in
-- that order; the answer row `idx` is the step's 1-based position in the arrays.
CREATE FUNCTION rate_limit_take_many(
    p_key_ids TEXT[],
    p_now_us BIGINT[],
    p_interval_us BIGINT[],
    p_window_us BIGINT[]
) RETURNS TABLE (idx INTEGER, allowed BOOLEAN, tat_after_us BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    step RECORD;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_key_ids, 1), 0) LOOP
        SELECT * INTO step
        FROM rate_limit_take(p_key_ids[i], p_now_us[i], p_interval_us[i], p_window_us[i]);
        idx := i;
        allowed := step.allowed;
        tat_after_us := step.tat_after_us;
        RETURN NEXT;
    END LOOP;
END;
$$;
