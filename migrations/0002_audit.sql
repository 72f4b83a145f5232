-- Audit trail: append-only, hash-chained per tenant.
CREATE TABLE audit_events (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    seq          bigint NOT NULL CHECK (seq >= 1),
    id           uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    actor_role   text NOT NULL DEFAULT '',
    client_id    text NOT NULL DEFAULT '',
    on_behalf_of text NOT NULL DEFAULT '',
    action       text NOT NULL CHECK (action IN ('C', 'R', 'U', 'D', 'E')),
    verb         text NOT NULL,
    outcome      text NOT NULL,
    patient_ref  text NOT NULL DEFAULT '',
    resources    text[] NOT NULL DEFAULT '{}',
    source_ip    text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT '',
    purpose      text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    decision_id  uuid,
    detail       jsonb NOT NULL DEFAULT '{}',
    enc_version  smallint NOT NULL,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_patient ON audit_events (tenant_id, patient_ref, occurred_at) WHERE patient_ref <> '';
CREATE INDEX audit_events_decision ON audit_events (tenant_id, decision_id) WHERE decision_id IS NOT NULL;

CREATE TABLE audit_heads (
    tenant_id  text PRIMARY KEY REFERENCES tenants (id),
    seq        bigint NOT NULL,
    hash       bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % rejected', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_events', 'audit_heads'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''vigil.tenant_id'', true)) WITH CHECK (tenant_id = current_setting(''vigil.tenant_id'', true))', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT ON audit_events TO vigil_app;
GRANT SELECT, INSERT, UPDATE ON audit_heads TO vigil_app;
