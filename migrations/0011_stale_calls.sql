-- Calls whose instance died: live in the database, silent for longer than a resume could take.
-- Any instance's janitor finds them across organizations (and then ends each inside its org).
CREATE FUNCTION stale_live_sessions(p_silent_for interval)
RETURNS TABLE (session_id uuid, org_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT id, org_id FROM roleplay_sessions
    WHERE status = 'live' AND transport <> 'vapi' AND deleted_at IS NULL
      AND coalesce(last_activity_at, started_at, created_at) < now() - p_silent_for
    ORDER BY last_activity_at
    LIMIT 100
$$;
REVOKE ALL ON FUNCTION stale_live_sessions(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stale_live_sessions(interval) TO sparring_app;
