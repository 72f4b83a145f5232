package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DetailVia (string): how access was granted, as access.Decision.Via reports
// it: "role", "care_team" or "break_glass".
const DetailVia = "via"

// Disclosure is one entry of a HIPAA §164.528 accounting: someone outside the
// patient's care team received or viewed the patient's data.
type Disclosure struct {
	At         time.Time
	Seq        int64
	Actor      string
	ActorRole  string
	ClientID   string
	OnBehalfOf string
	// Recipient is the external party that received the data, when one did.
	Recipient string
	Action    Action
	Verb      string
	Purpose   string
	Resources []string
	// BreakGlass is true when access used an emergency override.
	BreakGlass bool
	RequestID  string
}

// disclosureWhere selects, among a patient's successful events, those by
// someone outside the care team: the producer said so (care_team false), the
// access was break-the-glass, the data went to a recipient, or the verb is a
// disclosure ("disclose.*") or an export of the patient's audit trail.
const disclosureWhere = `outcome = 'success' AND (
	detail->>'care_team' = 'false' OR detail->>'via' = 'break_glass' OR detail->>'break_glass' = 'true'
	OR detail ? 'recipient' OR verb LIKE 'disclose.%' OR verb = 'audit.export')`

// Disclosures lists, oldest first, the disclosures of patientRef's data since
// the given time, in tx (scoped to the tenant). HIPAA asks for six years.
func Disclosures(ctx context.Context, tx pgx.Tx, patientRef string, since time.Time) ([]Disclosure, error) {
	if patientRef == "" {
		return nil, fmt.Errorf("%w: patient reference required", ErrInvalidEvent)
	}
	rows, err := tx.Query(ctx, `SELECT occurred_at, seq, actor, actor_role, client_id, on_behalf_of,
		coalesce(detail->>'recipient', ''), action, verb, purpose, resources,
		coalesce(detail->>'via', '') = 'break_glass' OR coalesce(detail->>'break_glass', '') = 'true', request_id
		FROM audit_events
		WHERE tenant_id = current_setting('vigil.tenant_id', true) AND patient_ref = $1 AND patient_ref <> ''
		  AND occurred_at >= $2 AND `+disclosureWhere+`
		ORDER BY occurred_at, seq`, patientRef, since)
	if err != nil {
		return nil, fmt.Errorf("audit: disclosures: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Disclosure, error) {
		var d Disclosure
		var action string
		err := r.Scan(&d.At, &d.Seq, &d.Actor, &d.ActorRole, &d.ClientID, &d.OnBehalfOf, &d.Recipient, &action, &d.Verb,
			&d.Purpose, &d.Resources, &d.BreakGlass, &d.RequestID)
		d.Action, d.At = Action(action), d.At.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: disclosures: %w", err)
	}
	return out, nil
}
