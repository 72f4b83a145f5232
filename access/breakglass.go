package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/store"
)

// Break-the-glass limits.
const (
	// DefaultBreakGlassTTL is a grant's lifetime when the caller passes 0.
	DefaultBreakGlassTTL = 60 * time.Minute
	// MaxBreakGlassTTL caps any grant: one shift, then ask again.
	MaxBreakGlassTTL = 12 * time.Hour
	// MinBreakGlassReason is the minimum reason length in characters, after
	// trimming. It does not make a reason good; it rules out "x", "ok",
	// "urgent" and other placeholders, so that the privacy officer who
	// reviews every grant has a stated justification to review.
	MinBreakGlassReason = 10
	// MaxBreakGlassReason bounds the stored reason.
	MaxBreakGlassReason = 1000
)

// Grant is a time-boxed emergency access grant of one subject to one patient.
type Grant struct {
	ID         string
	TenantID   string
	Subject    string
	Issuer     string
	ClientID   string
	Role       Role
	PatientRef string
	// Reason is the requester's justification. Free text that may hold PHI:
	// it goes to the audit trail and the privacy review, never to process logs.
	Reason    string
	GrantedAt time.Time
	ExpiresAt time.Time
}

// Active reports whether g is in force at t.
func (g Grant) Active(t time.Time) bool { return !t.Before(g.GrantedAt) && t.Before(g.ExpiresAt) }

// LogValue implements slog.LogValuer without the reason or patient.
func (g Grant) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("grant_id", g.ID),
		slog.String("subject", g.Subject),
		slog.String("role", string(g.Role)),
		slog.Time("expires_at", g.ExpiresAt),
	)
}

// RequestBreakGlass records a grant for pr (a clinical role, tenant-bound)
// to patientRef from now for ttl (0 means DefaultBreakGlassTTL; at most
// MaxBreakGlassTTL). tx must be a tenant transaction for pr.TenantID. The
// reason is trimmed and must be at least MinBreakGlassReason characters. The
// caller writes the high-severity audit event and raises the alert, in the
// same transaction.
func RequestBreakGlass(ctx context.Context, tx pgx.Tx, pr *Principal, patientRef, reason string, now time.Time, ttl time.Duration) (Grant, error) {
	const op = "access: break glass: "
	if pr == nil || pr.TenantID == "" || pr.Subject == "" {
		return Grant{}, fmt.Errorf(op+"%w: tenant-bound principal required", ErrInvalidInput)
	}
	if !RoleMay(pr.Role, ActionBreakGlassRequest) {
		return Grant{}, fmt.Errorf(op+"%w: role may not break the glass", ErrForbidden)
	}
	patientRef = strings.TrimSpace(patientRef)
	if patientRef == "" {
		return Grant{}, fmt.Errorf(op+"%w: patient reference required", ErrInvalidInput)
	}
	reason = strings.TrimSpace(reason)
	if n := utf8.RuneCountInString(reason); n < MinBreakGlassReason {
		return Grant{}, fmt.Errorf(op+"%w: reason must be at least %d characters", ErrInvalidInput, MinBreakGlassReason)
	} else if n > MaxBreakGlassReason {
		return Grant{}, fmt.Errorf(op+"%w: reason must be at most %d characters", ErrInvalidInput, MaxBreakGlassReason)
	}
	if ttl == 0 {
		ttl = DefaultBreakGlassTTL
	}
	if ttl < 0 || ttl > MaxBreakGlassTTL {
		return Grant{}, fmt.Errorf(op+"%w: ttl must be between 0 and %s", ErrInvalidInput, MaxBreakGlassTTL)
	}
	if now.IsZero() {
		return Grant{}, fmt.Errorf(op+"%w: time required", ErrInvalidInput)
	}
	g := Grant{
		TenantID: pr.TenantID, Subject: pr.Subject, Issuer: pr.Issuer, ClientID: pr.ClientID,
		Role: pr.Role, PatientRef: patientRef, Reason: reason,
		GrantedAt: now.UTC().Truncate(time.Microsecond), // Postgres precision
	}
	g.ExpiresAt = g.GrantedAt.Add(ttl)
	err := tx.QueryRow(ctx, `
		INSERT INTO break_glass_grants (tenant_id, subject, issuer, client_id, role, patient_ref, reason, granted_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING id::text`,
		g.TenantID, g.Subject, g.Issuer, g.ClientID, string(g.Role), g.PatientRef, g.Reason, g.GrantedAt, g.ExpiresAt,
	).Scan(&g.ID)
	if err != nil {
		return Grant{}, fmt.Errorf(op+"insert: %w", err)
	}
	return g, nil
}

const grantCols = `id::text, tenant_id, subject, issuer, client_id, role, patient_ref, reason, granted_at, expires_at`

func scanGrant(row pgx.Row) (Grant, error) {
	var g Grant
	var role string
	err := row.Scan(&g.ID, &g.TenantID, &g.Subject, &g.Issuer, &g.ClientID, &role, &g.PatientRef, &g.Reason, &g.GrantedAt, &g.ExpiresAt)
	g.Role = Role(role)
	return g, err
}

// ActiveGrant returns subject's grant for patientRef in force at now (the
// one expiring last), or nil and no error when there is none.
func ActiveGrant(ctx context.Context, tx pgx.Tx, subject, patientRef string, now time.Time) (*Grant, error) {
	g, err := scanGrant(tx.QueryRow(ctx, `
		SELECT `+grantCols+` FROM break_glass_grants
		WHERE subject = $1 AND patient_ref = $2 AND granted_at <= $3 AND expires_at > $3
		ORDER BY expires_at DESC LIMIT 1`, subject, patientRef, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("access: active grant: %w", err)
	}
	return &g, nil
}

// ListGrants returns the grants made at or after since in tx's tenant,
// oldest first, for the privacy officer's review.
func ListGrants(ctx context.Context, tx pgx.Tx, since time.Time) ([]Grant, error) {
	rows, err := tx.Query(ctx, `
		SELECT `+grantCols+` FROM break_glass_grants
		WHERE granted_at >= $1 ORDER BY granted_at, id`, since)
	if err != nil {
		return nil, fmt.Errorf("access: list grants: %w", err)
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("access: list grants: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access: list grants: %w", err)
	}
	return out, nil
}

// NewGrantChecker returns a GrantChecker reading break_glass_grants, each
// lookup in its own tenant transaction.
func NewGrantChecker(db *store.DB) GrantChecker { return pgGrants{db: db} }

type pgGrants struct{ db *store.DB }

func (c pgGrants) HasActiveGrant(ctx context.Context, tenantID, subject, patientRef string, at time.Time) (bool, error) {
	var g *Grant
	err := c.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		g, err = ActiveGrant(ctx, tx, subject, patientRef, at)
		return err
	})
	return g != nil, err
}
