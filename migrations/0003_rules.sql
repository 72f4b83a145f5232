-- Rule packs per tenant (owned by package triage, triage/packs.go).
--   rule_packs             every uploaded pack version, immutable: the exact
--                          files Compile read and the sha256 they hash to.
--   rule_cases             the tenant's golden cases (FHIR input + expected
--                          outcome) a pack must pass before activation.
--   rule_pack_activations  append-only log; a tenant's active version is its
--                          latest row (none: the embedded default pack).
-- Every table: tenant_id, RLS enabled and FORCED, the tenant_isolation policy.

CREATE TABLE rule_packs (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    version      text NOT NULL CHECK (version ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$'),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    name         text NOT NULL,
    files        jsonb NOT NULL CHECK (jsonb_typeof(files) = 'object'), -- {path: content}: the original bytes (UTF-8)
    checks       jsonb NOT NULL DEFAULT '{}',                           -- lint and golden-case results at publish
    published_by text NOT NULL CHECK (published_by <> ''),
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version),
    UNIQUE (tenant_id, sha256)
);

CREATE TABLE rule_cases (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'),
    body       jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object'),   -- the case file (rules.LoadCases format)
    added_by   text NOT NULL CHECK (added_by <> ''),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE rule_pack_activations (
    tenant_id    text NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    version      text NOT NULL,
    sha256       text NOT NULL,
    activated_by text NOT NULL CHECK (activated_by <> ''),
    activated_at timestamptz NOT NULL DEFAULT now(),
    cases_passed int NOT NULL,
    cases_total  int NOT NULL CHECK (cases_passed = cases_total), -- a pack that fails a golden case is never active
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, version) REFERENCES rule_packs (tenant_id, version)
);
CREATE INDEX rule_pack_activations_latest ON rule_pack_activations (tenant_id, id DESC);

-- Pack versions and activations are never changed or removed, not even by a
-- role that could (the app role has no UPDATE/DELETE grant in the first place).
CREATE FUNCTION rules_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER rule_packs_append_only BEFORE UPDATE OR DELETE ON rule_packs
    FOR EACH ROW EXECUTE FUNCTION rules_append_only();
CREATE TRIGGER rule_packs_no_truncate BEFORE TRUNCATE ON rule_packs
    FOR EACH STATEMENT EXECUTE FUNCTION rules_append_only();
CREATE TRIGGER rule_pack_activations_append_only BEFORE UPDATE OR DELETE ON rule_pack_activations
    FOR EACH ROW EXECUTE FUNCTION rules_append_only();
CREATE TRIGGER rule_pack_activations_no_truncate BEFORE TRUNCATE ON rule_pack_activations
    FOR EACH STATEMENT EXECUTE FUNCTION rules_append_only();

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rule_packs', 'rule_cases', 'rule_pack_activations'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''vigil.tenant_id'', true)) WITH CHECK (tenant_id = current_setting(''vigil.tenant_id'', true))', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT ON rule_packs, rule_pack_activations TO vigil_app;
GRANT SELECT, INSERT ON rule_cases TO vigil_app;
GRANT UPDATE (body, added_by, updated_at) ON rule_cases TO vigil_app;
