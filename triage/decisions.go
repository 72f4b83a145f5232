package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/rules"
)

// Decision stages.
const (
	StageEscalated = "escalated" // committed by the pre-rules, draft pending
	StageDecided   = "decided"   // the pipeline's final revision is in
	StageReviewed  = "reviewed"  // a clinician acted on it
)

// ErrNotFound is returned when a decision or review item does not exist for the tenant.
var ErrNotFound = errors.New("triage: not found")

// Decision is the current state of one decision (its latest revision).
type Decision struct {
	ID               string     `json:"id"`
	TenantID         string     `json:"tenant_id"`
	TriggerType      string     `json:"trigger_type"`
	TriggerID        string     `json:"trigger_id"`
	TriggerKey       string     `json:"trigger_key"`
	TriggerVersion   string     `json:"trigger_version"`
	IntakeEventID    string     `json:"intake_event_id"`
	PatientRef       string     `json:"patient_ref"`
	PatientPseudonym string     `json:"patient_pseudonym"`
	Outcome          Outcome    `json:"outcome"`
	Revision         int        `json:"revision"`
	Stage            string     `json:"stage"`
	RulePackVersion  string     `json:"rule_pack_version"`
	RulePackSHA256   string     `json:"rule_pack_sha256"`
	ReceivedAt       time.Time  `json:"received_at"`
	EscalatedAt      *time.Time `json:"escalated_at,omitempty"`
	DecidedAt        *time.Time `json:"decided_at,omitempty"`
	ReviewedAt       *time.Time `json:"reviewed_at,omitempty"`
}

const decisionCols = `id::text, tenant_id, trigger_type, trigger_id, trigger_key, trigger_version, intake_event_id::text,
	patient_ref, patient_pseudonym, disposition, priority, flags, queue, revision, stage, rule_pack_version, rule_pack_sha256,
	received_at, escalated_at, decided_at, reviewed_at`

func scanDecision(row pgx.Row) (*Decision, error) {
	var d Decision
	var disp, prio string
	var flags []string
	err := row.Scan(&d.ID, &d.TenantID, &d.TriggerType, &d.TriggerID, &d.TriggerKey, &d.TriggerVersion, &d.IntakeEventID,
		&d.PatientRef, &d.PatientPseudonym, &disp, &prio, &flags, &d.Outcome.Queue, &d.Revision, &d.Stage,
		&d.RulePackVersion, &d.RulePackSHA256, &d.ReceivedAt, &d.EscalatedAt, &d.DecidedAt, &d.ReviewedAt)
	if err != nil {
		return nil, err
	}
	if d.Outcome.Disposition, err = rules.ParseDisposition(disp); err != nil {
		return nil, err
	}
	if d.Outcome.Priority, err = rules.ParsePriority(prio); err != nil {
		return nil, err
	}
	for _, f := range flags {
		d.Outcome.Flags = append(d.Outcome.Flags, rules.Flag(f))
	}
	return &d, nil
}

// GetDecision reads one decision in tx (scoped to its tenant).
func GetDecision(ctx context.Context, tx pgx.Tx, id string) (*Decision, error) {
	d, err := scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM decisions WHERE id::text = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("triage: decision: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("triage: get decision: %w", err)
	}
	return d, nil
}

func (p *Pipeline) findDecision(ctx context.Context, j *job) (*Decision, error) {
	var d *Decision
	err := p.d.DB.InTenant(ctx, j.tenant.ID, func(tx pgx.Tx) error {
		var err error
		d, err = scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM decisions WHERE trigger_type = $1 AND trigger_id = $2 AND trigger_key = $3`,
			j.trig.Type, j.trig.ID, j.key))
		if errors.Is(err, pgx.ErrNoRows) {
			d, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("triage: find decision: %w", err)
	}
	return d, nil
}

// previouslyCommunicated: an earlier version of this trigger had a reply released to the patient.
func (p *Pipeline) previouslyCommunicated(ctx context.Context, j *job) (bool, error) {
	var n int
	err := p.d.DB.InTenant(ctx, j.tenant.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM decisions d JOIN review_items r ON r.tenant_id = d.tenant_id AND r.decision_id = d.id
			WHERE d.trigger_type = $1 AND d.trigger_id = $2 AND d.trigger_key <> $3 AND r.reply_released`,
			j.trig.Type, j.trig.ID, j.key).Scan(&n)
	})
	if err != nil {
		return false, fmt.Errorf("triage: previous communications: %w", err)
	}
	return n > 0, nil
}

func (p *Pipeline) patientRef(j *job) string {
	if r, ok := fhir.PatientRefOf(j.trig); ok {
		return r.Unversioned().String()
	}
	return ""
}

// commitEscalation creates the decision as ESCALATED with its review item,
// outbox message, delivery job and audit event, in one transaction.
func (p *Pipeline) commitEscalation(ctx context.Context, j *job, pre rules.Outcome) (*Decision, error) {
	out := EscalationOutcome(pre)
	now := p.d.Now().UTC()
	var dec *Decision
	err := p.d.DB.InTenant(ctx, j.tenant.ID, func(tx pgx.Tx) error {
		patient := p.patientRef(j)
		var id string
		err := tx.QueryRow(ctx, `INSERT INTO decisions (tenant_id, trigger_type, trigger_id, trigger_key, trigger_version, intake_event_id,
				patient_ref, patient_pseudonym, disposition, priority, flags, queue, revision, stage, rule_pack_version, rule_pack_sha256,
				received_at, escalated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15, $16, $17)
			ON CONFLICT (tenant_id, trigger_type, trigger_id, trigger_key) DO NOTHING RETURNING id::text`,
			j.tenant.ID, j.trig.Type, j.trig.ID, j.key, j.trig.VersionID, j.intake.ID, patient,
			Pseudonym(j.tenant.Config.PseudonymSalt, patient), out.Disposition.String(), out.Priority.String(), out.Flags.Strings(), out.Queue,
			StageEscalated, j.pack.Version(), j.pack.SHA256(), j.intake.ReceivedAt, now).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			// Another worker escalated this trigger version first.
			dec, err = scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM decisions WHERE trigger_type = $1 AND trigger_id = $2 AND trigger_key = $3`,
				j.trig.Type, j.trig.ID, j.key))
			return err
		}
		if err != nil {
			return err
		}
		rec := p.baseRecord(j, id, 1, StageEscalated, pre.Hits)
		rec.Outcome = out
		rec.Times.Escalated = &now
		if err := p.insertRevision(ctx, tx, j, id, 1, StageEscalated, out, rec, Sealed{TriggerRaw: j.trig.Raw}); err != nil {
			return err
		}
		if err := p.upsertReviewItem(ctx, tx, j, id, patient, out, nil); err != nil {
			return err
		}
		if err := p.enqueueEscalation(ctx, tx, j.tenant.ID, id, out, pre.Hits, "escalation"); err != nil {
			return err
		}
		e := systemActor.event(j.tenant.ID, now, audit.ActionCreate, "decision.escalate", "success")
		e.PatientRef, e.DecisionID = patient, id
		e.Resources = []string{j.trig.Ref().String()}
		e.Detail = map[string]any{"revision": 1, "disposition": out.Disposition.String(), "priority": out.Priority.String(),
			"rules": hitIDs(pre.Hits), "rule_pack": j.pack.Version(), "rule_pack_sha256": j.pack.SHA256()}
		if _, err := audit.Append(ctx, tx, e); err != nil {
			return err
		}
		dec, err = scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM decisions WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("triage: commit escalation: %w", err)
	}
	return dec, nil
}

func (p *Pipeline) enqueueEscalation(ctx context.Context, tx pgx.Tx, tenantID, decisionID string, out Outcome, hits []rules.Hit, kind string) error {
	payload, err := json.Marshal(map[string]any{
		"decision_id": decisionID, "priority": out.Priority.String(), "disposition": out.Disposition.String(),
		"queue": out.Queue, "rules": hitIDs(hits), "kind": kind,
	})
	if err != nil {
		return err
	}
	var outboxID string
	if err := tx.QueryRow(ctx, `INSERT INTO outbox (tenant_id, decision_id, kind, payload) VALUES ($1, $2, $3, $4) RETURNING id::text`,
		tenantID, decisionID, kind, payload).Scan(&outboxID); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if _, err := p.d.Enqueue.EnqueueDelivery(ctx, tx, tenantID, outboxID); err != nil {
		return fmt.Errorf("enqueue delivery: %w", err)
	}
	return nil
}

func (p *Pipeline) baseRecord(j *job, decisionID string, revision int, stage string, hits []rules.Hit) Record {
	rec := Record{
		Version: RecordVersion, DecisionID: decisionID, TenantID: j.tenant.ID, Revision: revision, Stage: stage,
		Trigger:  Trigger{Type: j.intake.Trigger.Type, IntakeEventID: j.intake.ID, EventID: j.intake.EventID, Source: j.intake.Source},
		Times:    Times{Received: j.intake.ReceivedAt},
		RuleHits: hits,
	}
	if j.trig != nil {
		rec.Trigger.Ref, rec.Trigger.Key, rec.Trigger.SHA256 = j.trig.Ref().String(), j.key, j.trig.SHA256
		rec.Trigger.PatientRef = p.patientRef(j)
	} else {
		rec.Trigger.Ref = j.intake.Trigger.String()
	}
	if j.pack != nil {
		rec.RulePack = PackInfo{Version: j.pack.Version(), SHA256: j.pack.SHA256()}
	}
	return rec
}

func (p *Pipeline) insertRevision(ctx context.Context, tx pgx.Tx, j *job, decisionID string, rev int, stage string, out Outcome, rec Record, sealed Sealed) error {
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	sb, err := json.Marshal(sealed)
	if err != nil {
		return fmt.Errorf("encode sealed part: %w", err)
	}
	ct, keyID, err := p.d.Sealer.Seal(ctx, tx, j.tenant.ID, sealPurposeRevision, sb)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO decision_revisions (tenant_id, decision_id, revision, stage, disposition, priority, flags, record, sealed, sealed_key, actor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		j.tenant.ID, decisionID, rev, stage, out.Disposition.String(), out.Priority.String(), out.Flags.Strings(), recJSON, ct, keyID, systemActor.Subject)
	if err != nil {
		return fmt.Errorf("insert revision: %w", err)
	}
	return nil
}

// Seal purposes (bound as associated data).
const (
	sealPurposeRevision = "decision_revision"
	sealPurposeReply    = "reply_draft"
)

func (p *Pipeline) upsertReviewItem(ctx context.Context, tx pgx.Tx, j *job, decisionID, patient string, out Outcome, reply []byte) error {
	tenantID := j.tenant.ID
	var replyCT []byte
	var replyKey string
	if len(reply) > 0 {
		var err error
		if replyCT, replyKey, err = p.d.Sealer.Seal(ctx, tx, tenantID, sealPurposeReply, reply); err != nil {
			return err
		}
	}
	labels := SensitivityLabels(j.trig, j.patient, j.rin.PatientAgeYears)
	if labels == nil {
		labels = []string{} // the column is NOT NULL; nil would be sent as NULL
	}
	dept := j.tenant.Config.QueueDepartments[out.Queue]
	ack := out.Disposition == rules.Escalated
	_, err := tx.Exec(ctx, `INSERT INTO review_items (tenant_id, decision_id, queue, disposition, priority, flags, patient_ref, ack_required,
			reply_sealed, reply_key, sensitivity, department)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nullif($10, ''), $11, $12)
		ON CONFLICT (tenant_id, decision_id) DO UPDATE SET queue = excluded.queue, disposition = excluded.disposition,
			priority = excluded.priority, flags = excluded.flags, ack_required = review_items.ack_required OR excluded.ack_required,
			reply_sealed = coalesce(excluded.reply_sealed, review_items.reply_sealed), reply_key = coalesce(excluded.reply_key, review_items.reply_key),
			sensitivity = coalesce((SELECT array_agg(DISTINCT l ORDER BY l) FROM unnest(review_items.sensitivity || excluded.sensitivity) l), '{}'),
			department = excluded.department, updated_at = now()`,
		tenantID, decisionID, out.Queue, out.Disposition.String(), out.Priority.String(), out.Flags.Strings(), patient, ack, replyCT, replyKey,
		labels, dept)
	if err != nil {
		return fmt.Errorf("review item: %w", err)
	}
	return nil
}

// commitFinal writes the pipeline's final revision. If another worker already
// did (a retried job), it returns that decision and dup=true.
func (p *Pipeline) commitFinal(ctx context.Context, j *job, snap *fhir.Snapshot, floor rules.Outcome, f *final) (*Decision, bool, error) {
	now := p.d.Now().UTC()
	var dec *Decision
	dup := false
	err := p.d.DB.InTenant(ctx, j.tenant.ID, func(tx pgx.Tx) error {
		patient := p.patientRef(j)
		cur, err := scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM decisions WHERE trigger_type = $1 AND trigger_id = $2 AND trigger_key = $3 FOR UPDATE`,
			j.trig.Type, j.trig.ID, j.key))
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		out := f.out
		rev := 1
		var id string
		wasEscalated := false
		if cur != nil {
			if cur.Stage != StageEscalated {
				dec, dup = cur, true
				return nil
			}
			out = raise(cur.Outcome, out)
			rev = cur.Revision + 1
			id = cur.ID
			wasEscalated = cur.Outcome.Disposition == rules.Escalated
			_, err = tx.Exec(ctx, `UPDATE decisions SET disposition = $2, priority = $3, flags = $4, queue = $5, revision = $6, stage = $7,
				decided_at = $8, rule_pack_version = $9, rule_pack_sha256 = $10, updated_at = now() WHERE id = $1`,
				id, out.Disposition.String(), out.Priority.String(), out.Flags.Strings(), out.Queue, rev, StageDecided, now, j.pack.Version(), j.pack.SHA256())
		} else {
			var escalatedAt *time.Time
			if out.Disposition == rules.Escalated {
				escalatedAt = &now
			}
			err = tx.QueryRow(ctx, `INSERT INTO decisions (tenant_id, trigger_type, trigger_id, trigger_key, trigger_version, intake_event_id,
					patient_ref, patient_pseudonym, disposition, priority, flags, queue, revision, stage, rule_pack_version, rule_pack_sha256,
					received_at, escalated_at, decided_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15, $16, $17, $18) RETURNING id::text`,
				j.tenant.ID, j.trig.Type, j.trig.ID, j.key, j.trig.VersionID, j.intake.ID, patient,
				Pseudonym(j.tenant.Config.PseudonymSalt, patient), out.Disposition.String(), out.Priority.String(), out.Flags.Strings(), out.Queue,
				StageDecided, j.pack.Version(), j.pack.SHA256(), j.intake.ReceivedAt, escalatedAt, now).Scan(&id)
		}
		if err != nil {
			return err
		}
		rec := p.baseRecord(j, id, rev, StageDecided, floor.Hits)
		rec.Snapshot = &SnapInfo{Hash: snap.Hash, Entries: snap.Entries()}
		rec.Draft, rec.Grounding, rec.Confidence = f.draftInfo, f.grounding, f.confidence
		if f.shadow != nil {
			rec.Shadow = f.shadow
		}
		rec.Outcome = out
		drafted := now
		rec.Times.Drafted, rec.Times.Decided = &drafted, &now
		if cur != nil {
			rec.Times.Escalated = cur.EscalatedAt
		}
		sealed := f.sealed
		sealed.Snapshot, err = snap.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode snapshot: %w", err)
		}
		sealed.TriggerRaw = j.trig.Raw
		if err := p.insertRevision(ctx, tx, j, id, rev, StageDecided, out, rec, sealed); err != nil {
			return err
		}
		if err := p.upsertReviewItem(ctx, tx, j, id, patient, out, []byte(f.sealed.ReplyDraft)); err != nil {
			return err
		}
		if out.Disposition == rules.Escalated && !wasEscalated {
			if err := p.enqueueEscalation(ctx, tx, j.tenant.ID, id, out, floor.Hits, "escalation"); err != nil {
				return err
			}
		}
		e := systemActor.event(j.tenant.ID, now, audit.ActionCreate, "decision.decide", "success")
		e.PatientRef, e.DecisionID = patient, id
		e.Resources = entryRefs(snap)
		e.Detail = map[string]any{"revision": rev, "disposition": out.Disposition.String(), "priority": out.Priority.String(),
			"flags": out.Flags.Strings(), "rules": hitIDs(floor.Hits), "snapshot_hash": snap.Hash,
			"rule_pack": j.pack.Version(), "drafter": f.draftInfo.Drafter, "model": f.draftInfo.Model,
			"prompt_version": f.draftInfo.PromptVersion, "confidence": f.confidence.Effective}
		if _, err := audit.Append(ctx, tx, e); err != nil {
			return err
		}
		dec, err = scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM decisions WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("triage: commit decision: %w", err)
	}
	return dec, dup, nil
}

func entryRefs(s *fhir.Snapshot) []string {
	es := s.Entries()
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, fhir.Ref{Type: e.Type, ID: e.ID, Version: e.VersionID}.String())
	}
	return out
}

// recordUnavailable decides MANUAL_TRIAGE "record unavailable" when the FHIR
// server cannot give the record: the job ends, a person looks, nothing waits silently.
// An escalation already committed stays ESCALATED; the flag and reason are added.
func (p *Pipeline) recordUnavailable(ctx context.Context, j *job, reason string) (*Result, error) {
	now := p.d.Now().UTC()
	key := j.key
	typ, id := j.intake.Trigger.Type, j.intake.Trigger.ID
	if key == "" {
		// No trigger bytes to key on: key by the version the EHR named, else the event.
		key = "unavailable:" + j.intake.Trigger.Version
		if j.intake.Trigger.Version == "" {
			key = "unavailable-event:" + j.intake.Source + "#" + j.intake.EventID
		}
	}
	out := Outcome{Disposition: rules.ManualTriage, Priority: rules.Routine, Flags: rules.Flags{rules.FlagRecordUnavailable},
		Queue: QueueTriage, Reasons: []string{reason}}
	var res Result
	err := p.d.DB.InTenant(ctx, j.tenant.ID, func(tx pgx.Tx) error {
		cur, err := scanDecision(tx.QueryRow(ctx, `SELECT `+decisionCols+` FROM decisions WHERE trigger_type = $1 AND trigger_id = $2 AND trigger_key = $3 FOR UPDATE`, typ, id, key))
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rev := 1
		var decID string
		if cur != nil {
			if cur.Stage != StageEscalated {
				res = Result{DecisionID: cur.ID, Disposition: cur.Outcome.Disposition, Priority: cur.Outcome.Priority, Duplicate: true}
				return nil
			}
			out = raise(cur.Outcome, out)
			rev, decID = cur.Revision+1, cur.ID
			_, err = tx.Exec(ctx, `UPDATE decisions SET disposition = $2, priority = $3, flags = $4, queue = $5, revision = $6, stage = $7, decided_at = $8, updated_at = now() WHERE id = $1`,
				decID, out.Disposition.String(), out.Priority.String(), out.Flags.Strings(), out.Queue, rev, StageDecided, now)
		} else {
			err = tx.QueryRow(ctx, `INSERT INTO decisions (tenant_id, trigger_type, trigger_id, trigger_key, trigger_version, intake_event_id,
					disposition, priority, flags, queue, revision, stage, received_at, decided_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $13) RETURNING id::text`,
				j.tenant.ID, typ, id, key, j.intake.Trigger.Version, j.intake.ID, out.Disposition.String(), out.Priority.String(),
				out.Flags.Strings(), out.Queue, StageDecided, j.intake.ReceivedAt, now).Scan(&decID)
		}
		if err != nil {
			return err
		}
		rec := p.baseRecord(j, decID, rev, StageDecided, nil)
		rec.Outcome = out
		rec.Times.Decided = &now
		if err := p.insertRevision(ctx, tx, j, decID, rev, StageDecided, out, rec, Sealed{}); err != nil {
			return err
		}
		patient := ""
		if j.trig != nil {
			patient = p.patientRef(j)
		}
		if err := p.upsertReviewItem(ctx, tx, j, decID, patient, out, nil); err != nil {
			return err
		}
		e := systemActor.event(j.tenant.ID, now, audit.ActionCreate, "decision.record_unavailable", "failure")
		e.DecisionID = decID
		e.Resources = []string{j.intake.Trigger.String()}
		e.Detail = map[string]any{"revision": rev, "reason": reason, "alert": true}
		if _, err := audit.Append(ctx, tx, e); err != nil {
			return err
		}
		res = Result{DecisionID: decID, Disposition: out.Disposition, Priority: out.Priority}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("triage: record unavailable: %w", err)
	}
	return &res, nil
}
