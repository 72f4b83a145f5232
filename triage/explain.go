package triage

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/seal"
)

// Explanation is a decision with every revision's record: the whole "why".
type Explanation struct {
	Decision  *Decision  `json:"decision"`
	Revisions []Revision `json:"revisions"`
	// Audit lists the decision's entries in the tenant's hash chain (its chain position).
	Audit []AuditEntry `json:"audit"`
}

// AuditEntry is one audit record about the decision.
type AuditEntry struct {
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Verb    string    `json:"verb"`
	Outcome string    `json:"outcome"`
	Hash    string    `json:"hash"`
}

// Revision is one stored revision.
type Revision struct {
	Revision  int       `json:"revision"`
	Stage     string    `json:"stage"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"created_at"`
	Record    Record    `json:"record"`
	Sealed    *Sealed   `json:"sealed,omitempty"`
}

// Explain loads decision id and its revisions. With sealer non-nil the sealed
// parts are opened too (the caller audits that access).
func Explain(ctx context.Context, tx pgx.Tx, tenantID, id string, sealer *seal.Sealer) (*Explanation, error) {
	d, err := GetDecision(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT revision, stage, actor, created_at, record, sealed, coalesce(sealed_key, '')
		FROM decision_revisions WHERE decision_id = $1 ORDER BY revision`, d.ID)
	if err != nil {
		return nil, fmt.Errorf("triage: explain: %w", err)
	}
	type raw struct {
		rev    Revision
		rec    []byte
		sealed []byte
		key    string
	}
	var rs []raw
	for rows.Next() {
		var r raw
		if err := rows.Scan(&r.rev.Revision, &r.rev.Stage, &r.rev.Actor, &r.rev.CreatedAt, &r.rec, &r.sealed, &r.key); err != nil {
			rows.Close()
			return nil, fmt.Errorf("triage: explain: %w", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	ex := &Explanation{Decision: d}
	page, err := audit.Search(ctx, tx, audit.Query{DecisionID: d.ID, Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("triage: explain: audit entries: %w", err)
	}
	for _, r := range page.Records {
		ex.Audit = append(ex.Audit, AuditEntry{Seq: r.Seq, At: r.OccurredAt, Actor: r.Actor, Verb: r.Verb, Outcome: r.Outcome, Hash: hex.EncodeToString(r.Hash)})
	}
	for _, r := range rs {
		if err := json.Unmarshal(r.rec, &r.rev.Record); err != nil {
			return nil, fmt.Errorf("triage: explain: revision %d record: %w", r.rev.Revision, err)
		}
		if sealer != nil && len(r.sealed) > 0 {
			pt, err := sealer.Open(ctx, tx, tenantID, sealPurposeRevision, r.key, r.sealed)
			if err != nil {
				return nil, fmt.Errorf("triage: explain: revision %d: %w", r.rev.Revision, err)
			}
			var s Sealed
			if err := json.Unmarshal(pt, &s); err != nil {
				return nil, fmt.Errorf("triage: explain: revision %d sealed part: %w", r.rev.Revision, err)
			}
			r.rev.Sealed = &s
		}
		ex.Revisions = append(ex.Revisions, r.rev)
	}
	return ex, nil
}

// WriteText renders the explanation for a person.
func (ex *Explanation) WriteText(w io.Writer) error {
	d := ex.Decision
	var b strings.Builder
	fmt.Fprintf(&b, "Decision %s  (tenant %s)\n", d.ID, d.TenantID)
	fmt.Fprintf(&b, "  trigger      %s/%s  version %s  key %s\n", d.TriggerType, d.TriggerID, orDefault(d.TriggerVersion, "-"), d.TriggerKey)
	fmt.Fprintf(&b, "  patient      %s (%s)\n", orDefault(d.PatientRef, "-"), orDefault(d.PatientPseudonym, "-"))
	fmt.Fprintf(&b, "  disposition  %s   priority %s   queue %s\n", d.Outcome.Disposition, d.Outcome.Priority, d.Outcome.Queue)
	fmt.Fprintf(&b, "  flags        %s\n", orDefault(strings.Join(d.Outcome.Flags.Strings(), ", "), "none"))
	fmt.Fprintf(&b, "  rule pack    %s  sha256 %s\n", orDefault(d.RulePackVersion, "-"), orDefault(d.RulePackSHA256, "-"))
	fmt.Fprintf(&b, "  received     %s\n", d.ReceivedAt.Format(time.RFC3339Nano))
	if d.EscalatedAt != nil {
		fmt.Fprintf(&b, "  escalated    %s  (%s after intake)\n", d.EscalatedAt.Format(time.RFC3339Nano), d.EscalatedAt.Sub(d.ReceivedAt).Round(time.Millisecond))
	}
	if d.DecidedAt != nil {
		fmt.Fprintf(&b, "  decided      %s\n", d.DecidedAt.Format(time.RFC3339Nano))
	}
	if d.ReviewedAt != nil {
		fmt.Fprintf(&b, "  reviewed     %s\n", d.ReviewedAt.Format(time.RFC3339Nano))
	}
	for _, r := range ex.Revisions {
		rec := r.Record
		fmt.Fprintf(&b, "\nRevision %d  [%s]  by %s at %s\n", r.Revision, r.Stage, r.Actor, r.CreatedAt.Format(time.RFC3339))
		fmt.Fprintf(&b, "  outcome: %s, %s, queue %s, flags [%s]\n", rec.Outcome.Disposition, rec.Outcome.Priority, rec.Outcome.Queue, strings.Join(rec.Outcome.Flags.Strings(), ", "))
		for _, why := range rec.Outcome.Reasons {
			fmt.Fprintf(&b, "  why: %s\n", why)
		}
		if rec.Trigger.Ref != "" {
			fmt.Fprintf(&b, "  trigger: %s sha256 %s (event %s from %s)\n", rec.Trigger.Ref, short(rec.Trigger.SHA256), rec.Trigger.EventID, rec.Trigger.Source)
		}
		for _, h := range rec.RuleHits {
			fmt.Fprintf(&b, "  rule %s v%s [%s] → %s %s: %s\n", h.RuleID, h.RuleVersion, h.Kind, h.Disposition, h.Priority, h.Message)
			for _, v := range h.Values {
				if v.Value != nil {
					fmt.Fprintf(&b, "      value %s %s%v %s (code %s|%s", v.Analyte, v.Comparator, *v.Value, v.Unit, v.System, v.Code)
					if v.OriginalUnit != "" && v.OriginalUnit != v.Unit {
						fmt.Fprintf(&b, ", sent as %s %s", v.OriginalValue, v.OriginalUnit)
					}
					if v.Limit != nil {
						fmt.Fprintf(&b, ", limit %v", *v.Limit)
					}
					b.WriteString(")\n")
				}
				if v.Interpretation != "" {
					fmt.Fprintf(&b, "      interpretation %s\n", v.Interpretation)
				}
				if v.Category != "" {
					fmt.Fprintf(&b, "      red flag %s: %q\n", v.Category, v.Phrase)
				}
			}
		}
		if rec.RulePack.Version != "" {
			fmt.Fprintf(&b, "  rule pack: %s (sha256 %s)\n", rec.RulePack.Version, short(rec.RulePack.SHA256))
		}
		if s := rec.Snapshot; s != nil {
			fmt.Fprintf(&b, "  snapshot: %d resources, hash %s\n", len(s.Entries), short(s.Hash))
			for i, e := range s.Entries {
				if i == 12 {
					fmt.Fprintf(&b, "      … %d more\n", len(s.Entries)-i)
					break
				}
				fmt.Fprintf(&b, "      %s/%s/_history/%s sha256 %s\n", e.Type, e.ID, orDefault(e.VersionID, "-"), short(e.SHA256))
			}
		}
		for _, dr := range []*DraftInfo{rec.Draft, rec.Shadow} {
			if dr == nil {
				continue
			}
			label := "draft"
			if dr.Shadow {
				label = "shadow draft (not shown in queue)"
			}
			fmt.Fprintf(&b, "  %s: by %s", label, dr.Drafter)
			if dr.Baseline {
				b.WriteString(" (baseline, no LLM)")
			}
			if dr.Model != "" {
				fmt.Fprintf(&b, " model %s prompt %s@%s", dr.Model, dr.PromptID, dr.PromptVersion)
			}
			fmt.Fprintf(&b, " status %s", dr.Status)
			if dr.StatusReason != "" {
				fmt.Fprintf(&b, " (%s)", dr.StatusReason)
			}
			fmt.Fprintf(&b, "; priority %s route %s, %d claims\n", dr.Priority, dr.Route, dr.Claims)
			if len(dr.Params) > 0 {
				pj, _ := json.Marshal(dr.Params)
				fmt.Fprintf(&b, "      parameters sent: %s; tokens %d/%d; latency %dms; attempts %d\n", pj, dr.PromptTokens, dr.OutputTokens, dr.LatencyMS, dr.Attempts)
			}
		}
		if g := rec.Grounding; g != nil {
			fmt.Fprintf(&b, "  grounding: grounded=%v\n", g.Grounded)
			for _, c := range g.Claims {
				fmt.Fprintf(&b, "      claim %d grounded=%v evidence %s %s\n", c.Index, c.Grounded, strings.Join(c.Evidence, ","), strings.Join(c.Problems, "; "))
			}
			for _, p := range g.Problems {
				fmt.Fprintf(&b, "      problem: %s\n", p)
			}
		}
		if c := rec.Confidence; c != nil {
			fmt.Fprintf(&b, "  confidence: raw %.2f effective %.2f threshold %.2f (route %s)\n", c.Raw, c.Effective, c.Threshold, c.Route)
		}
		if rv := rec.Review; rv != nil {
			fmt.Fprintf(&b, "  review: %s by %s (%s) reason %s reply released %v\n", rv.Action, rv.Reviewer, rv.Role, orDefault(rv.ReasonCode, "-"), rv.ReplyRelease)
		}
		if s := r.Sealed; s != nil {
			if s.DraftRationale != "" {
				fmt.Fprintf(&b, "  rationale (sealed): %s\n", s.DraftRationale)
			}
			for i, c := range s.DraftClaims {
				fmt.Fprintf(&b, "  claim %d (sealed): %s [%s]\n", i, c.Text, strings.Join(c.Evidence, ", "))
			}
			if s.ReplyDraft != "" {
				fmt.Fprintf(&b, "  reply draft (sealed, released only on approval): %s\n", s.ReplyDraft)
			}
		}
	}
	if len(ex.Audit) > 0 {
		b.WriteString("\nAudit chain entries\n")
		for _, a := range ex.Audit {
			fmt.Fprintf(&b, "  seq %d  %s  %-28s %-8s by %s  hash %s\n", a.Seq, a.At.Format(time.RFC3339), a.Verb, a.Outcome, a.Actor, short(a.Hash))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return orDefault(h, "-")
}
