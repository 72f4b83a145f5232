package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
)

// Review errors, each a clear 4xx at the API.
var (
	ErrReasonRequired    = errors.New("triage: a reason code is required")
	ErrPhysicianRequired = errors.New("triage: this reply is under physician hold: only a physician may release it")
	ErrAlreadyActed      = errors.New("triage: the item was already approved, edited or rejected")
	ErrNotEscalated      = errors.New("triage: only escalated items are acknowledged")
	ErrBadEdit           = errors.New("triage: invalid edit")
)

// ReasonCodes a clinician may give for an edit, a rejection or a lowered priority.
var reasonCodes = map[string]string{
	"clinical-judgement":    "clinical judgement",
	"duplicate":             "duplicate of another item",
	"already-addressed":     "already addressed with the patient",
	"wrong-route":           "wrong queue",
	"inaccurate-draft":      "draft inaccurate",
	"patient-contacted":     "patient contacted directly",
	"not-clinically-urgent": "not clinically urgent",
}

// ReasonCodes returns the accepted reason codes and their meanings.
func ReasonCodes() map[string]string {
	out := make(map[string]string, len(reasonCodes))
	for k, v := range reasonCodes {
		out[k] = v
	}
	return out
}

// Item is a review-queue item as stored (without its sealed reply).
type Item struct {
	ID            string            `json:"id"`
	DecisionID    string            `json:"decision_id"`
	Queue         string            `json:"queue"`
	Disposition   rules.Disposition `json:"disposition"`
	Priority      rules.Priority    `json:"priority"`
	Flags         rules.Flags       `json:"flags"`
	PatientRef    string            `json:"patient_ref"`
	Sensitivity   []string          `json:"sensitivity,omitempty"`
	Department    string            `json:"department,omitempty"`
	Status        string            `json:"status"`
	AckRequired   bool              `json:"ack_required"`
	AckedAt       *time.Time        `json:"acked_at,omitempty"`
	AckedBy       string            `json:"acked_by,omitempty"`
	HasReply      bool              `json:"has_reply"`
	ReplyReleased bool              `json:"reply_released"`
	Reviewer      string            `json:"reviewer,omitempty"`
	Action        string            `json:"action,omitempty"`
	ReasonCode    string            `json:"reason_code,omitempty"`
	ActedAt       *time.Time        `json:"acted_at,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
}

const itemCols = `id::text, decision_id::text, queue, disposition, priority, flags, patient_ref, sensitivity, department, status, ack_required, acked_at,
	coalesce(acked_by, ''), reply_sealed IS NOT NULL, reply_released, coalesce(reviewer, ''), coalesce(action, ''),
	coalesce(reason_code, ''), acted_at, created_at`

func scanItem(row pgx.Row) (*Item, error) {
	var it Item
	var disp, prio string
	var flags []string
	if err := row.Scan(&it.ID, &it.DecisionID, &it.Queue, &disp, &prio, &flags, &it.PatientRef, &it.Sensitivity, &it.Department, &it.Status, &it.AckRequired,
		&it.AckedAt, &it.AckedBy, &it.HasReply, &it.ReplyReleased, &it.Reviewer, &it.Action, &it.ReasonCode, &it.ActedAt, &it.CreatedAt); err != nil {
		return nil, err
	}
	var err error
	if it.Disposition, err = rules.ParseDisposition(disp); err != nil {
		return nil, err
	}
	if it.Priority, err = rules.ParsePriority(prio); err != nil {
		return nil, err
	}
	for _, f := range flags {
		it.Flags = append(it.Flags, rules.Flag(f))
	}
	return &it, nil
}

// Filter selects review items.
type Filter struct {
	Status      string // default "open"
	Disposition string
	Priority    string
	Queue       string
	PatientRef  string
	Limit       int // default 100, max 500
}

// ListItems returns items matching f, most urgent first, oldest first within a priority.
func ListItems(ctx context.Context, tx pgx.Tx, f Filter) ([]*Item, error) {
	if f.Status == "" {
		f.Status = "open"
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := tx.Query(ctx, `SELECT `+itemCols+` FROM review_items
		WHERE ($1 = 'any' OR status = $1) AND ($2 = '' OR disposition = $2) AND ($3 = '' OR priority = $3)
		  AND ($4 = '' OR queue = $4) AND ($5 = '' OR patient_ref = $5)
		ORDER BY array_position(ARRAY['stat','asap','urgent','routine'], priority), created_at, id LIMIT $6`,
		f.Status, f.Disposition, f.Priority, f.Queue, f.PatientRef, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("triage: list items: %w", err)
	}
	defer rows.Close()
	var out []*Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("triage: list items: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// GetItem reads one item.
func GetItem(ctx context.Context, tx pgx.Tx, id string) (*Item, error) {
	it, err := scanItem(tx.QueryRow(ctx, `SELECT `+itemCols+` FROM review_items WHERE id::text = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("triage: review item: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("triage: get item: %w", err)
	}
	return it, nil
}

// GetItemByDecision reads the review item of a decision.
func GetItemByDecision(ctx context.Context, tx pgx.Tx, decisionID string) (*Item, error) {
	it, err := scanItem(tx.QueryRow(ctx, `SELECT `+itemCols+` FROM review_items WHERE decision_id::text = $1`, decisionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("triage: review item: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("triage: get item: %w", err)
	}
	return it, nil
}

// Reviewer acts on the review queue. It holds no state beyond its collaborators.
type Reviewer struct {
	Sealer *seal.Sealer
	Now    func() time.Time
}

// ActionInput is a clinician's action.
type ActionInput struct {
	Action       string // approve | edit | reject
	ReasonCode   string
	Priority     string // edit: new priority (lowering needs a reason code)
	Queue        string // edit: new route
	Reply        string // edit: replacement reply text
	ReleaseReply bool   // approve/edit: release the reply draft to the patient
}

// ActionResult is what the clinician's action produced.
type ActionResult struct {
	Item  *Item
	Reply string // the released reply text, when released
}

// Act applies approve / edit / reject to item id, writes the decision's next
// revision and the audit event, in tx.
func (r *Reviewer) Act(ctx context.Context, tx pgx.Tx, tenantID, id string, in ActionInput, actor Actor) (*ActionResult, error) {
	it, err := scanItem(tx.QueryRow(ctx, `SELECT `+itemCols+` FROM review_items WHERE id::text = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("triage: review item: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("triage: act: %w", err)
	}
	if it.Status != "open" {
		return nil, ErrAlreadyActed
	}
	if in.ReasonCode != "" {
		if _, ok := reasonCodes[in.ReasonCode]; !ok {
			return nil, fmt.Errorf("%w: unknown reason code %q", ErrBadEdit, in.ReasonCode)
		}
	}
	out := Outcome{Disposition: it.Disposition, Priority: it.Priority, Flags: it.Flags, Queue: it.Queue}
	status := ""
	switch in.Action {
	case "approve":
		status = "approved"
	case "reject":
		status = "rejected"
		if in.ReasonCode == "" {
			return nil, ErrReasonRequired
		}
		in.ReleaseReply = false
	case "edit":
		status = "edited"
		if in.ReasonCode == "" {
			return nil, ErrReasonRequired
		}
		if in.Priority != "" {
			p, err := rules.ParsePriority(in.Priority)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadEdit, err)
			}
			out.Priority = p // a clinician may lower it, with the reason code, audited below
		}
		if in.Queue != "" {
			out.Queue = strings.TrimSpace(in.Queue)
		}
	default:
		return nil, fmt.Errorf("%w: action %q (want approve, edit or reject)", ErrBadEdit, in.Action)
	}
	if in.ReleaseReply && it.Flags.Has(rules.FlagPhysicianHold) && actor.Role != "physician" {
		return nil, ErrPhysicianRequired
	}
	now := r.Now().UTC()
	var replyCT []byte
	var replyKey string
	reply := ""
	if in.Action == "edit" && in.Reply != "" {
		if replyCT, replyKey, err = r.Sealer.Seal(ctx, tx, tenantID, sealPurposeReply, []byte(in.Reply)); err != nil {
			return nil, err
		}
		reply = in.Reply
	} else if in.ReleaseReply && it.HasReply {
		if reply, err = r.openReply(ctx, tx, tenantID, id); err != nil {
			return nil, err
		}
	}
	released := in.ReleaseReply && reply != ""
	if _, err := tx.Exec(ctx, `UPDATE review_items SET status = $2, reviewer = $3, reviewer_role = $4, action = $5, reason_code = nullif($6, ''),
			acted_at = $7, priority = $8, queue = $9, reply_released = $10,
			reply_sealed = coalesce($11, reply_sealed), reply_key = coalesce(nullif($12, ''), reply_key), updated_at = now()
		WHERE id::text = $1`, id, status, actor.Subject, actor.Role, in.Action, in.ReasonCode, now, out.Priority.String(), out.Queue,
		released, replyCT, replyKey); err != nil {
		return nil, fmt.Errorf("triage: act: %w", err)
	}
	dec, err := GetDecision(ctx, tx, it.DecisionID)
	if err != nil {
		return nil, err
	}
	rev := dec.Revision + 1
	rec := Record{Version: RecordVersion, DecisionID: dec.ID, TenantID: tenantID, Revision: rev, Stage: StageReviewed,
		Outcome: out, Review: &Review{Reviewer: actor.Subject, Role: actor.Role, Action: in.Action, ReasonCode: in.ReasonCode, ReplyRelease: released}}
	rec.Times.Reviewed = &now
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO decision_revisions (tenant_id, decision_id, revision, stage, disposition, priority, flags, record, actor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, tenantID, dec.ID, rev, StageReviewed, out.Disposition.String(), out.Priority.String(),
		out.Flags.Strings(), recJSON, actor.Subject); err != nil {
		return nil, fmt.Errorf("triage: act: revision: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE decisions SET revision = $2, stage = $3, reviewed_at = $4, priority = $5, queue = $6, updated_at = now() WHERE id::text = $1`,
		dec.ID, rev, StageReviewed, now, out.Priority.String(), out.Queue); err != nil {
		return nil, fmt.Errorf("triage: act: decision: %w", err)
	}
	verb := "review." + in.Action
	e := actor.event(tenantID, now, audit.ActionUpdate, verb, "success")
	e.PatientRef, e.DecisionID = it.PatientRef, dec.ID
	e.Detail = map[string]any{"review_item_id": id, "reason_code": in.ReasonCode, "reply_released": released,
		"priority_before": it.Priority.String(), "priority_after": out.Priority.String(), "lowered": out.Priority < it.Priority,
		"queue_after": out.Queue, "revision": rev}
	if _, err := audit.Append(ctx, tx, e); err != nil {
		return nil, err
	}
	after, err := GetItem(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	res := &ActionResult{Item: after}
	if released {
		res.Reply = reply
	}
	return res, nil
}

// Acknowledge records that the on-call clinician has seen an escalation.
func (r *Reviewer) Acknowledge(ctx context.Context, tx pgx.Tx, tenantID, id string, actor Actor) (*Item, error) {
	it, err := scanItem(tx.QueryRow(ctx, `SELECT `+itemCols+` FROM review_items WHERE id::text = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("triage: review item: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("triage: ack: %w", err)
	}
	if !it.AckRequired {
		return nil, ErrNotEscalated
	}
	now := r.Now().UTC()
	if it.AckedAt == nil {
		if _, err := tx.Exec(ctx, `UPDATE review_items SET acked_at = $2, acked_by = $3, updated_at = now() WHERE id::text = $1`, id, now, actor.Subject); err != nil {
			return nil, fmt.Errorf("triage: ack: %w", err)
		}
	}
	e := actor.event(tenantID, now, audit.ActionUpdate, "escalation.acknowledge", "success")
	e.PatientRef, e.DecisionID = it.PatientRef, it.DecisionID
	e.Detail = map[string]any{"review_item_id": id, "already_acknowledged": it.AckedAt != nil}
	if _, err := audit.Append(ctx, tx, e); err != nil {
		return nil, err
	}
	return GetItem(ctx, tx, id)
}

func (r *Reviewer) openReply(ctx context.Context, tx pgx.Tx, tenantID, id string) (string, error) {
	var ct []byte
	var key string
	if err := tx.QueryRow(ctx, `SELECT reply_sealed, reply_key FROM review_items WHERE id::text = $1`, id).Scan(&ct, &key); err != nil {
		return "", fmt.Errorf("triage: reply: %w", err)
	}
	pt, err := r.Sealer.Open(ctx, tx, tenantID, sealPurposeReply, key, ct)
	if err != nil {
		return "", err
	}
	return string(pt), nil
}
