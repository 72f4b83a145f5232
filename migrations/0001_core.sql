-- Core schema: tenant registry, intake, decisions, review queue, outbox.
-- Every tenant table: tenant_id, RLS enabled and FORCED, one policy comparing
-- tenant_id with the transaction's vigil.tenant_id (unset → no rows).

CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL,
    config      jsonb NOT NULL,          -- no secrets: issuers, FHIR URL, LLM mode/endpoint, thresholds, queues, notifier
    secrets     bytea,                   -- sealed JSON (FHIR credentials, LLM API key)
    secrets_key text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_keys (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    key_id     text NOT NULL,
    kek_id     text NOT NULL,
    wrapped    bytea NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key_id)
);
CREATE UNIQUE INDEX tenant_keys_one_active ON tenant_keys (tenant_id) WHERE active;

CREATE TABLE intake_events (
    tenant_id       text NOT NULL REFERENCES tenants (id),
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    source          text NOT NULL,       -- subscription reference, or "reference:<client>"
    event_id        text NOT NULL,       -- event number, or Type/id/versionId for plain references
    kind            text NOT NULL CHECK (kind IN ('subscription', 'reference')),
    trigger_type    text NOT NULL,
    trigger_id      text NOT NULL,
    trigger_version text NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL,
    request_id      text NOT NULL DEFAULT '',
    client_id       text NOT NULL DEFAULT '',
    job_id          bigint,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source, event_id)
);

CREATE TABLE decisions (
    tenant_id         text NOT NULL REFERENCES tenants (id),
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    trigger_type      text NOT NULL,
    trigger_id        text NOT NULL,
    trigger_key       text NOT NULL,     -- versionId, or sha256 of the resource without meta
    trigger_version   text NOT NULL DEFAULT '',
    intake_event_id   uuid NOT NULL,
    patient_ref       text NOT NULL DEFAULT '',
    patient_pseudonym text NOT NULL DEFAULT '',
    disposition       text NOT NULL CHECK (disposition IN ('ESCALATED', 'HELD', 'MANUAL_TRIAGE', 'SUGGESTED')),
    priority          text NOT NULL CHECK (priority IN ('stat', 'asap', 'urgent', 'routine')),
    flags             text[] NOT NULL DEFAULT '{}',
    queue             text NOT NULL,
    revision          int NOT NULL,
    stage             text NOT NULL,     -- escalated | decided | reviewed
    rule_pack_version text NOT NULL DEFAULT '',
    rule_pack_sha256  text NOT NULL DEFAULT '',
    received_at       timestamptz NOT NULL,
    escalated_at      timestamptz,
    decided_at        timestamptz,
    reviewed_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, trigger_type, trigger_id, trigger_key),
    FOREIGN KEY (tenant_id, intake_event_id) REFERENCES intake_events (tenant_id, id)
);

CREATE TABLE decision_revisions (
    tenant_id            text NOT NULL,
    decision_id          uuid NOT NULL,
    revision             int NOT NULL CHECK (revision >= 1),
    stage                text NOT NULL,
    disposition          text NOT NULL,
    priority             text NOT NULL,
    flags                text[] NOT NULL DEFAULT '{}',
    record               jsonb NOT NULL,  -- the decision record ("why"): refs, hashes, rule hits, draft, grounding
    sealed               bytea,           -- sealed JSON: snapshot bytes, LLM request/response, reply draft
    sealed_key           text,
    actor                text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, decision_id, revision),
    FOREIGN KEY (tenant_id, decision_id) REFERENCES decisions (tenant_id, id)
);

CREATE TABLE review_items (
    tenant_id      text NOT NULL,
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    decision_id    uuid NOT NULL,
    queue          text NOT NULL,
    disposition    text NOT NULL,
    priority       text NOT NULL,
    flags          text[] NOT NULL DEFAULT '{}',
    patient_ref    text NOT NULL DEFAULT '',
    sensitivity    text[] NOT NULL DEFAULT '{}',  -- access labels: behavioral_health, substance_use_part2, hiv, minor
    department     text NOT NULL DEFAULT '',      -- owning department (tenant's queue → department map)
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'edited', 'rejected')),
    ack_required   boolean NOT NULL DEFAULT false,
    acked_at       timestamptz,
    acked_by       text,
    escalations    int NOT NULL DEFAULT 0,      -- notifications sent (first + SLA re-escalations)
    last_escalated_at timestamptz,
    reply_sealed   bytea,
    reply_key      text,
    reply_released boolean NOT NULL DEFAULT false,
    reviewer       text,
    reviewer_role  text,
    action         text,
    reason_code    text,
    acted_at       timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, decision_id),
    FOREIGN KEY (tenant_id, decision_id) REFERENCES decisions (tenant_id, id)
);
CREATE INDEX review_items_open ON review_items (tenant_id, status, priority, created_at);

CREATE TABLE outbox (
    tenant_id       text NOT NULL,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    decision_id     uuid NOT NULL,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,       -- ids, priority and rule ids only; never clinical content
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, decision_id) REFERENCES decisions (tenant_id, id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_keys', 'intake_events', 'decisions', 'decision_revisions', 'review_items', 'outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''vigil.tenant_id'', true)) WITH CHECK (tenant_id = current_setting(''vigil.tenant_id'', true))', t);
    END LOOP;
END $$;

GRANT SELECT ON tenants TO vigil_app;
GRANT SELECT, INSERT, UPDATE ON tenant_keys TO vigil_app;
GRANT SELECT, INSERT, UPDATE ON intake_events, decisions, review_items, outbox TO vigil_app;
GRANT SELECT, INSERT ON decision_revisions TO vigil_app;

-- Audit events that cannot be attributed to a tenant (a token no tenant's
-- identity provider issued) go to this reserved tenant's chain.
INSERT INTO tenants (id, name, config) VALUES ('system', 'Vigil system events', '{"issuers": [], "queues": []}');
