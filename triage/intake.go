package triage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/store"
)

// Enqueuer puts jobs on the queue inside the caller's transaction, so a job
// exists exactly when the row it points at does. Implemented by workers (River).
type Enqueuer interface {
	EnqueueTriage(ctx context.Context, tx pgx.Tx, tenantID, intakeEventID string) (int64, error)
	EnqueueDelivery(ctx context.Context, tx pgx.Tx, tenantID, outboxID string) (int64, error)
	// EnqueueDraft queues the slow half of the pipeline (context, model, grounding, decision).
	EnqueueDraft(ctx context.Context, tx pgx.Tx, tenantID, intakeEventID string) (int64, error)
}

// Actor is who acts, and from where, for the audit trail.
type Actor struct {
	Subject    string
	Role       string
	ClientID   string
	OnBehalfOf string
	SourceIP   string
	UserAgent  string
	RequestID  string
	Purpose    string
}

// SystemActor is the pipeline acting on its own.
var systemActor = Actor{Subject: "system:vigil-pipeline", Role: "system", Purpose: "TREAT"}

func (a Actor) event(tenantID string, at time.Time, action audit.Action, verb, outcome string) audit.Event {
	return audit.Event{
		TenantID: tenantID, OccurredAt: at, Actor: a.Subject, ActorRole: a.Role, ClientID: a.ClientID,
		OnBehalfOf: a.OnBehalfOf, Action: action, Verb: verb, Outcome: outcome,
		SourceIP: a.SourceIP, UserAgent: a.UserAgent, Purpose: a.Purpose, RequestID: a.RequestID,
	}
}

// IntakeEvent is one event an EHR posted: a reference to the trigger, never its content.
type IntakeEvent struct {
	TenantID   string
	Source     string // subscription reference, or "reference:<client>"
	EventID    string
	Kind       string // subscription | reference
	Trigger    fhir.Ref
	ReceivedAt time.Time
}

// IntakeResult says what RecordIntake did.
type IntakeResult struct {
	ID        string
	Duplicate bool
	JobID     int64
}

// RecordIntake stores ev (deduplicated on tenant, source and event id),
// enqueues its triage job and writes the audit event, all in tx.
func RecordIntake(ctx context.Context, tx pgx.Tx, enq Enqueuer, ev IntakeEvent, actor Actor) (IntakeResult, error) {
	if ev.Trigger.Type == "" || ev.Trigger.ID == "" || ev.EventID == "" || ev.Source == "" {
		return IntakeResult{}, fmt.Errorf("triage: intake: trigger, source and event id are required")
	}
	var res IntakeResult
	err := tx.QueryRow(ctx, `INSERT INTO intake_events (tenant_id, source, event_id, kind, trigger_type, trigger_id, trigger_version, received_at, request_id, client_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (tenant_id, source, event_id) DO NOTHING RETURNING id::text`,
		ev.TenantID, ev.Source, ev.EventID, ev.Kind, ev.Trigger.Type, ev.Trigger.ID, ev.Trigger.Version, ev.ReceivedAt,
		actor.RequestID, actor.ClientID).Scan(&res.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := tx.QueryRow(ctx, `SELECT id::text, coalesce(job_id, 0) FROM intake_events WHERE tenant_id = $1 AND source = $2 AND event_id = $3`,
			ev.TenantID, ev.Source, ev.EventID).Scan(&res.ID, &res.JobID); err != nil {
			return IntakeResult{}, fmt.Errorf("triage: intake: load duplicate: %w", err)
		}
		res.Duplicate = true
	} else if err != nil {
		return IntakeResult{}, fmt.Errorf("triage: intake: insert: %w", err)
	} else {
		res.JobID, err = enq.EnqueueTriage(ctx, tx, ev.TenantID, res.ID)
		if err != nil {
			return IntakeResult{}, fmt.Errorf("triage: intake: enqueue: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE intake_events SET job_id = $3 WHERE tenant_id = $1 AND id = $2`, ev.TenantID, res.ID, res.JobID); err != nil {
			return IntakeResult{}, fmt.Errorf("triage: intake: record job: %w", err)
		}
	}
	e := actor.event(ev.TenantID, ev.ReceivedAt, audit.ActionCreate, "intake.receive", "success")
	e.Resources = []string{ev.Trigger.String()}
	e.Detail = map[string]any{"intake_event_id": res.ID, "duplicate": res.Duplicate, "kind": ev.Kind}
	if _, err := audit.Append(ctx, tx, e); err != nil {
		return IntakeResult{}, fmt.Errorf("triage: intake: audit: %w", err)
	}
	return res, nil
}

// intakeRow is an intake event as the pipeline reads it.
type intakeRow struct {
	IntakeEvent
	ID string
}

func loadIntake(ctx context.Context, tx pgx.Tx, tenantID, id string) (*intakeRow, error) {
	r := &intakeRow{ID: id}
	r.TenantID = tenantID
	err := tx.QueryRow(ctx, `SELECT source, event_id, kind, trigger_type, trigger_id, trigger_version, received_at
		FROM intake_events WHERE tenant_id = $1 AND id = $2`, tenantID, id).
		Scan(&r.Source, &r.EventID, &r.Kind, &r.Trigger.Type, &r.Trigger.ID, &r.Trigger.Version, &r.ReceivedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("triage: intake event %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("triage: load intake: %w", err)
	}
	return r, nil
}
