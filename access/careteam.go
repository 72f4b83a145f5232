package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/store"
)

// CareTeamMember links a subject (a clinician's token "sub") to a patient
// for a period. Rows live in care_team_members (a tenant table).
type CareTeamMember struct {
	TenantID   string
	PatientRef string
	Subject    string
	Role       Role
	Since      time.Time
	Until      time.Time // zero: open-ended
	AddedBy    string    // subject who added the link, for review
}

// AddCareTeamMember inserts m in tx, which must be a tenant transaction for
// m.TenantID (row-level security rejects any other tenant). Adding the same
// (patient, subject, since) twice is a no-op.
func AddCareTeamMember(ctx context.Context, tx pgx.Tx, m CareTeamMember) error {
	if m.TenantID == "" || strings.TrimSpace(m.PatientRef) == "" || strings.TrimSpace(m.Subject) == "" {
		return fmt.Errorf("access: add care-team member: %w: tenant, patient and subject required", ErrInvalidInput)
	}
	if m.Since.IsZero() {
		return fmt.Errorf("access: add care-team member: %w: since required", ErrInvalidInput)
	}
	var until *time.Time
	if !m.Until.IsZero() {
		if !m.Until.After(m.Since) {
			return fmt.Errorf("access: add care-team member: %w: until must be after since", ErrInvalidInput)
		}
		until = &m.Until
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO care_team_members (tenant_id, patient_ref, subject, role, since, until, added_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, patient_ref, subject, since) DO NOTHING`,
		m.TenantID, m.PatientRef, m.Subject, string(m.Role), m.Since, until, m.AddedBy)
	if err != nil {
		return fmt.Errorf("access: add care-team member: %w", err)
	}
	return nil
}

// EndCareTeamMember closes every open or later-ending link of subject to
// patientRef at `at`. It reports how many links it closed.
func EndCareTeamMember(ctx context.Context, tx pgx.Tx, patientRef, subject string, at time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE care_team_members SET until = $3
		WHERE patient_ref = $1 AND subject = $2 AND since < $3 AND (until IS NULL OR until > $3)`,
		patientRef, subject, at)
	if err != nil {
		return 0, fmt.Errorf("access: end care-team member: %w", err)
	}
	return tag.RowsAffected(), nil
}

// IsCareTeamMember reports whether subject is on patientRef's care team at
// `at` (since ≤ at < until), within tx's tenant.
func IsCareTeamMember(ctx context.Context, tx pgx.Tx, patientRef, subject string, at time.Time) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM care_team_members
			WHERE patient_ref = $1 AND subject = $2 AND since <= $3 AND (until IS NULL OR until > $3))`,
		patientRef, subject, at).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("access: care-team lookup: %w", err)
	}
	return ok, nil
}

// NewCareTeam returns a CareTeam that reads care_team_members, each lookup
// in its own tenant transaction.
func NewCareTeam(db *store.DB) CareTeam { return pgCareTeam{db: db} }

type pgCareTeam struct{ db *store.DB }

func (c pgCareTeam) IsMember(ctx context.Context, tenantID, patientRef, subject string, at time.Time) (bool, error) {
	if tenantID == "" || patientRef == "" || subject == "" {
		return false, errors.New("access: care-team lookup: tenant, patient and subject required")
	}
	var ok bool
	err := c.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		ok, err = IsCareTeamMember(ctx, tx, patientRef, subject, at)
		return err
	})
	return ok, err
}
