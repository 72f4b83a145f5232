package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Partitioning: audit_events has one partition per UTC calendar month, named
// audit_events_yYYYYmMM, plus audit_events_default, which catches rows of a
// month nobody created a partition for so that a missing partition never stops
// the service. The maintenance role (migrations.MaintRole) creates months ahead
// with EnsurePartitions and drops expired ones with DropExpiredPartitions, both
// through SECURITY DEFINER functions; the app role can do neither. A month
// whose rows already sit in the default partition is not created (they stay
// there, and the default partition is never dropped); EnsurePartitions reports it.

// EnsurePartitions creates the partitions of the month containing now and the
// next ahead months (idempotent), through maintPool (the maintenance role's).
// It returns the months it could not create because their rows already sit in
// the default partition.
func EnsurePartitions(ctx context.Context, maintPool *pgxpool.Pool, now time.Time, ahead int) ([]time.Time, error) {
	m := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	var refused []time.Time
	for k := 0; k <= ahead; k++ {
		month := m.AddDate(0, k, 0)
		var ok bool
		if err := maintPool.QueryRow(ctx, `SELECT audit_create_partition($1::date)`, month.Format("2006-01-02")).Scan(&ok); err != nil {
			return refused, fmt.Errorf("audit: create partition %s: %w", month.Format("2006-01"), err)
		}
		if !ok {
			refused = append(refused, month)
		}
	}
	return refused, nil
}

// Partition is a monthly audit partition.
type Partition struct {
	Name   string
	From   time.Time // inclusive
	Before time.Time // exclusive
}

// ListPartitions lists the monthly partitions, oldest first.
func ListPartitions(ctx context.Context, maintPool *pgxpool.Pool) ([]Partition, error) {
	rows, err := maintPool.Query(ctx, `SELECT name, lo, hi FROM audit_partitions()`)
	if err != nil {
		return nil, fmt.Errorf("audit: list partitions: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partition, error) {
		var p Partition
		err := r.Scan(&p.Name, &p.From, &p.Before)
		p.From, p.Before = p.From.UTC(), p.Before.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: list partitions: %w", err)
	}
	return ps, nil
}

// RetentionPolicy configures DropExpiredPartitions.
type RetentionPolicy struct {
	// Years a partition is kept after its month ends (default 6, the minimum
	// the database function accepts).
	Years int
	// Logger receives every drop and refusal (default: discard).
	Logger *slog.Logger
}

// RetentionDecision is what happened to one expired partition.
type RetentionDecision struct {
	Partition string
	Dropped   bool
	Reason    string // "dropped", or why it was refused
}

// RetentionReport lists the decisions of one DropExpiredPartitions run.
type RetentionReport struct {
	Decisions []RetentionDecision
}

// Dropped returns the partitions dropped.
func (r RetentionReport) Dropped() []string {
	var out []string
	for _, d := range r.Decisions {
		if d.Dropped {
			out = append(out, d.Partition)
		}
	}
	return out
}

// DropExpiredPartitions drops each monthly partition that ended more than
// policy.Years before now, but only if the database agrees that it is older
// than six years, every tenant's rows in it are covered by a signed checkpoint
// that was exported, and no legal hold overlaps it; anything else is refused.
// Every decision is logged (audit_retention_log and policy.Logger) and a
// retention mark per tenant records where verification resumes. maintPool is
// the maintenance role's. It is what the periodic retention job runs.
func DropExpiredPartitions(ctx context.Context, maintPool *pgxpool.Pool, now time.Time, policy RetentionPolicy) (RetentionReport, error) {
	if policy.Years < 6 {
		policy.Years = 6
	}
	log := policy.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cutoff := now.UTC().AddDate(-policy.Years, 0, 0)
	ps, err := ListPartitions(ctx, maintPool)
	if err != nil {
		return RetentionReport{}, err
	}
	var rep RetentionReport
	for _, p := range ps {
		if p.Before.After(cutoff) {
			continue
		}
		var reason string
		if err := maintPool.QueryRow(ctx, `SELECT audit_drop_partition($1, $2)`, p.Name, cutoff).Scan(&reason); err != nil {
			return rep, fmt.Errorf("audit: drop partition %s: %w", p.Name, err)
		}
		d := RetentionDecision{Partition: p.Name, Dropped: reason == "dropped", Reason: reason}
		rep.Decisions = append(rep.Decisions, d)
		if d.Dropped {
			log.InfoContext(ctx, "audit partition dropped", "partition", p.Name)
		} else {
			log.WarnContext(ctx, "audit partition drop refused", "partition", p.Name, "reason", reason)
		}
	}
	return rep, nil
}

// LegalHold keeps every partition overlapping [From, Until) of a tenant.
type LegalHold struct {
	ID        string
	From      time.Time
	Until     time.Time
	Reason    string
	CreatedBy string
}

// PlaceLegalHold records a hold in tx (scoped to tenant) and audits it.
func PlaceLegalHold(ctx context.Context, tx pgx.Tx, tenant string, h LegalHold, now time.Time) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `INSERT INTO audit_legal_holds (tenant_id, from_at, until_at, reason, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id::text`, tenant, h.From, h.Until, h.Reason, h.CreatedBy, now).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("audit: legal hold: %w", err)
	}
	_, err = Append(ctx, tx, Event{TenantID: tenant, OccurredAt: now, Actor: h.CreatedBy, Action: ActionCreate,
		Verb: "audit.legal_hold", Outcome: OutcomeSuccess, Detail: map[string]any{"hold_id": id,
			"from": h.From.UTC().Format(time.RFC3339), "until": h.Until.UTC().Format(time.RFC3339)}})
	if err != nil {
		return "", err
	}
	return id, nil
}
