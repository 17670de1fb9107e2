-- Hardening: dashboard sessions stored server-side (revocable on sign-out, shared by every replica).
-- (supabase/schemas/14_hardening.sql has the same definitions.)

CREATE TABLE IF NOT EXISTS monitoring.dashboard_sessions (
    token_hash bytea PRIMARY KEY,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS dashboard_sessions_expires_at_idx ON monitoring.dashboard_sessions (expires_at);
COMMENT ON TABLE monitoring.dashboard_sessions IS
    'Dashboard sign-ins: SHA-256 of the session cookie, its CSRF token, expiry and revocation (sign-out).';
REVOKE ALL ON monitoring.dashboard_sessions FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON monitoring.dashboard_sessions TO service_role, tripsage_automation;
