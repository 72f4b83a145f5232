-- Access control: care teams, break-the-glass grants (tenant tables) and
-- the shared rate-limit counters (global). Owned by package access.

-- Who treats whom. A subject is a token "sub"; until NULL means open-ended.
CREATE TABLE care_team_members (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    patient_ref text NOT NULL CHECK (patient_ref <> ''),
    subject     text NOT NULL CHECK (subject <> ''),
    role        text NOT NULL DEFAULT '',
    since       timestamptz NOT NULL,
    until       timestamptz CHECK (until IS NULL OR until > since),
    added_by    text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, patient_ref, subject, since)
);

-- Emergency access grants. Append-only for the app: a grant is never edited
-- or deleted, it expires; privacy officers review them all.
CREATE TABLE break_glass_grants (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    subject     text NOT NULL CHECK (subject <> ''),
    issuer      text NOT NULL DEFAULT '',
    client_id   text NOT NULL DEFAULT '',
    role        text NOT NULL,
    patient_ref text NOT NULL CHECK (patient_ref <> ''),
    reason      text NOT NULL CHECK (char_length(btrim(reason)) BETWEEN 10 AND 1000),
    granted_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > granted_at AND expires_at <= granted_at + interval '12 hours'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX break_glass_grants_active ON break_glass_grants (tenant_id, subject, patient_ref, expires_at);
CREATE INDEX break_glass_grants_review ON break_glass_grants (tenant_id, granted_at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['care_team_members', 'break_glass_grants'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''vigil.tenant_id'', true)) WITH CHECK (tenant_id = current_setting(''vigil.tenant_id'', true))', t);
    END LOOP;
END $$;

-- Global: rate-limit counters shared by every instance. Keyed by an HMAC of
-- the limiter name and key, never the key itself; no tenant data, no PHI.
CREATE TABLE rate_limits (
    key_hash     bytea PRIMARY KEY CHECK (octet_length(key_hash) = 32),
    window_start timestamptz NOT NULL,
    prev_count   int NOT NULL DEFAULT 0,
    count        int NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);

GRANT SELECT, INSERT ON care_team_members TO vigil_app;
GRANT UPDATE (until) ON care_team_members TO vigil_app;
GRANT SELECT, INSERT ON break_glass_grants TO vigil_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limits TO vigil_app;
