-- Audit trail: append-only, hash-chained per tenant, partitioned by month.
--
-- audit_events is RANGE-partitioned on occurred_at, one partition per calendar
-- month (UTC), plus a DEFAULT partition so that a month nobody created a
-- partition for never stops the service: its rows land in audit_events_default,
-- which retention never drops. vigil_maint creates months ahead through
-- audit_create_partition (SECURITY DEFINER); the app role can neither create
-- nor drop partitions and has no privilege on a partition itself.
--
-- Per tenant, seq is gap-free and unique: audit.Append takes the tenant's
-- audit_heads row FOR UPDATE, so seq and occurred_at increase together (Append
-- never records an event earlier than its predecessor), and dropping the
-- oldest partitions removes a prefix of every tenant's chain. The primary key
-- must contain the partition key, so it is (tenant_id, seq, occurred_at); the
-- chain logic, not an index, is what keeps (tenant_id, seq) unique, and the
-- verifier reports any duplicate.

CREATE TABLE audit_events (
    tenant_id    text NOT NULL,
    seq          bigint NOT NULL CHECK (seq >= 1),
    id           uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    actor_role   text NOT NULL DEFAULT '',
    client_id    text NOT NULL DEFAULT '',
    on_behalf_of text NOT NULL DEFAULT '',
    action       text NOT NULL CHECK (action IN ('C', 'R', 'U', 'D', 'E')),
    verb         text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    patient_ref  text NOT NULL DEFAULT '',
    resources    text[] NOT NULL DEFAULT '{}',
    source_ip    text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT '',
    purpose      text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    decision_id  uuid,
    detail       jsonb NOT NULL DEFAULT '{}',
    enc_version  smallint NOT NULL,
    prev_hash    bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash         bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, seq, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Search: patient + time range, user + time range, time range; stable order (occurred_at, seq).
CREATE INDEX audit_events_patient ON audit_events (tenant_id, patient_ref, occurred_at, seq) WHERE patient_ref <> '';
CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor, occurred_at, seq);
CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at, seq);
CREATE INDEX audit_events_decision ON audit_events (tenant_id, decision_id) WHERE decision_id IS NOT NULL;
CREATE INDEX audit_events_resources ON audit_events USING gin (resources);

CREATE TABLE audit_heads (
    tenant_id   text PRIMARY KEY REFERENCES tenants (id),
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    occurred_at timestamptz,             -- last event's time (NULL before the first)
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Signed checkpoints: (tenant, count, head hash, time), ed25519.
CREATE TABLE audit_checkpoints (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    seq        bigint NOT NULL CHECK (seq >= 0),
    hash       bytea NOT NULL,
    signed_at  timestamptz NOT NULL,
    key_id     text NOT NULL,
    signature  bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (tenant_id, seq);

-- A checkpoint copied out of the database (file, WORM bucket): only exported
-- checkpoints let retention drop what they cover.
CREATE TABLE audit_checkpoint_exports (
    tenant_id     text NOT NULL,
    checkpoint_id uuid NOT NULL,
    exported_at   timestamptz NOT NULL,
    destination   text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, checkpoint_id, exported_at),
    FOREIGN KEY (tenant_id, checkpoint_id) REFERENCES audit_checkpoints (tenant_id, id)
);

-- Legal holds: no partition overlapping [from_at, until_at) is dropped while released_at is null.
CREATE TABLE audit_legal_holds (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    from_at     timestamptz NOT NULL,
    until_at    timestamptz NOT NULL,
    reason      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- Where retention cut each tenant's chain: verification resumes from here.
CREATE TABLE audit_retention_marks (
    tenant_id    text NOT NULL,
    partition    text NOT NULL,
    through_seq  bigint NOT NULL,
    through_hash bytea NOT NULL,
    dropped_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, partition)
);

-- Retention decisions (global: a partition spans tenants). Refusals are logged here too.
CREATE TABLE audit_retention_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partition  text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now(),
    dropped    boolean NOT NULL,
    reason     text NOT NULL
);

-- Anomaly alerts raised by the detectors.
CREATE TABLE audit_alerts (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    detector     text NOT NULL,
    severity     text NOT NULL,
    actor        text NOT NULL DEFAULT '',
    patient_ref  text NOT NULL DEFAULT '',
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    value        double precision NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, detector, actor, patient_ref, window_start)
);
CREATE INDEX audit_alerts_created ON audit_alerts (tenant_id, created_at);

-- Immutability: no UPDATE, DELETE or TRUNCATE, whoever asks (a superuser
-- can still switch triggers off; the hash chain and signed checkpoints catch that).
CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit: % is append-only: % rejected', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_checkpoints', 'audit_checkpoint_exports', 'audit_retention_marks', 'audit_retention_log', 'audit_alerts'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION audit_reject_change()', t || '_no_update', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()', t || '_no_truncate', t);
    END LOOP;
END $$;

-- A chain head only moves forward (the app role may UPDATE it, nothing else).
CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tenant_id <> OLD.tenant_id OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) THEN
        RAISE EXCEPTION 'audit: chain head of % may only move forward', OLD.tenant_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_heads_forward BEFORE UPDATE ON audit_heads
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();

-- audit_partition_name gives the partition holding month m (UTC).
CREATE FUNCTION audit_partition_name(m date) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'audit_events_y' || to_char(m, 'YYYY') || 'm' || to_char(m, 'MM')
$$;

-- audit_create_partition creates the partition for the month containing m
-- (idempotent). It refuses, returning false, when rows for that month already
-- sit in the default partition (they stay there; the service never stops).
CREATE FUNCTION audit_create_partition(m date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    lo timestamptz := (date_trunc('month', m::timestamp) AT TIME ZONE 'UTC');
    hi timestamptz := ((date_trunc('month', m::timestamp) + interval '1 month') AT TIME ZONE 'UTC');
    name text := audit_partition_name(date_trunc('month', m::timestamp)::date);
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN true;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_events_default WHERE occurred_at >= lo AND occurred_at < hi) THEN
        RAISE NOTICE 'audit: rows for % are in the default partition; not creating %', m, name;
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()', name);
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', name);
    RETURN true;
END $$;

CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

-- audit_partitions lists the monthly partitions (not the default) with their bounds.
CREATE FUNCTION audit_partitions() RETURNS TABLE (name text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.relname::text,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit_events'::regclass AND c.relname <> 'audit_events_default'
    ORDER BY 2
$$;

-- audit_drop_partition drops one monthly partition if, and only if, it ended
-- before not_after (the caller's "now minus retention"; never later than the
-- database clock minus six years), it is the oldest monthly partition (so a
-- drop removes a prefix of every chain), every tenant's rows in it are covered by a
-- signed checkpoint that was exported, and no legal hold overlaps it. It
-- records a retention mark per tenant (where verification resumes) and logs
-- the decision either way. Returns the reason ('dropped' or the refusal).
CREATE FUNCTION audit_drop_partition(name text, not_after timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    p record;
    t record;
    covered boolean;
    reason text := '';
BEGIN
    SELECT * INTO p FROM audit_partitions() ap WHERE ap.name = audit_drop_partition.name;
    IF NOT FOUND THEN
        reason := 'not a monthly audit partition';
    ELSIF p.hi > not_after OR p.hi > now() - interval '6 years' THEN
        reason := 'younger than the retention period';
    ELSIF EXISTS (SELECT 1 FROM audit_partitions() o WHERE o.hi <= p.lo) THEN
        reason := 'an older partition is still kept (chains are cut oldest first)';
    END IF;
    IF reason = '' THEN
        FOR t IN EXECUTE format('SELECT tenant_id, max(seq) AS max_seq, min(occurred_at) AS lo, max(occurred_at) AS hi FROM %I GROUP BY tenant_id', name) LOOP
            PERFORM set_config('vigil.tenant_id', t.tenant_id, true);
            SELECT EXISTS (
                SELECT 1 FROM audit_checkpoints c
                JOIN audit_checkpoint_exports x ON x.tenant_id = c.tenant_id AND x.checkpoint_id = c.id
                WHERE c.tenant_id = t.tenant_id AND c.seq >= t.max_seq) INTO covered;
            IF NOT covered THEN
                reason := format('tenant %s: not covered by an exported signed checkpoint (through seq %s)', t.tenant_id, t.max_seq);
                EXIT;
            END IF;
            IF EXISTS (SELECT 1 FROM audit_legal_holds h
                       WHERE h.tenant_id = t.tenant_id AND h.released_at IS NULL
                         AND h.from_at < p.hi AND h.until_at > p.lo) THEN
                reason := format('tenant %s: under legal hold', t.tenant_id);
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF reason = '' THEN
        FOR t IN EXECUTE format('SELECT DISTINCT ON (tenant_id) tenant_id, seq, hash FROM %I ORDER BY tenant_id, seq DESC', name) LOOP
            PERFORM set_config('vigil.tenant_id', t.tenant_id, true);
            INSERT INTO audit_retention_marks (tenant_id, partition, through_seq, through_hash)
            VALUES (t.tenant_id, name, t.seq, t.hash);
        END LOOP;
        PERFORM set_config('vigil.tenant_id', '', true);
        EXECUTE format('DROP TABLE %I', name);
        reason := 'dropped';
    END IF;
    INSERT INTO audit_retention_log (partition, dropped, reason) VALUES (name, reason = 'dropped', reason);
    RETURN reason;
END $$;

-- The migration creates last month through three months ahead; vigil_maint keeps creating ahead.
SELECT audit_create_partition((date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k))::date)
FROM generate_series(-1, 3) AS k;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_events', 'audit_heads', 'audit_checkpoints', 'audit_checkpoint_exports',
                             'audit_legal_holds', 'audit_retention_marks', 'audit_alerts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''vigil.tenant_id'', true)) WITH CHECK (tenant_id = current_setting(''vigil.tenant_id'', true))', t);
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION audit_create_partition(date), audit_drop_partition(text, timestamptz), audit_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_create_partition(date), audit_drop_partition(text, timestamptz), audit_partitions() TO vigil_maint;
GRANT SELECT ON audit_retention_log TO vigil_maint;

GRANT SELECT, INSERT ON audit_events, audit_checkpoints, audit_checkpoint_exports, audit_alerts TO vigil_app;
GRANT SELECT, INSERT, UPDATE ON audit_heads TO vigil_app;
GRANT SELECT, INSERT ON audit_legal_holds TO vigil_app;
GRANT UPDATE (released_at) ON audit_legal_holds TO vigil_app;
GRANT SELECT ON audit_retention_marks TO vigil_app;
