package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
)

// PackResolver compiles the rule pack a decision recorded (its version and
// sha256), whatever the tenant has active now. *PackStore implements it.
type PackResolver interface {
	Resolve(ctx context.Context, tx pgx.Tx, tenantID string, info PackInfo) (*rules.Pack, error)
}

// ErrPackUnknown: the recorded pack is neither the resolver's default nor stored.
var ErrPackUnknown = errors.New("triage: recorded rule pack not available")

// Resolve implements PackResolver for a single pack: it resolves only the
// pack whose version and sha256 it holds.
func (s StaticPacks) Resolve(_ context.Context, _ pgx.Tx, _ string, info PackInfo) (*rules.Pack, error) {
	if s.Pack != nil && s.Pack.SHA256() == info.SHA256 && s.Pack.Version() == info.Version {
		return s.Pack, nil
	}
	return nil, fmt.Errorf("rule pack %s (sha256 %s): %w", info.Version, short(info.SHA256), ErrPackUnknown)
}

// RuleOutcome is what the rules made of a trigger: the floor and the rules fired.
type RuleOutcome struct {
	Disposition string   `json:"disposition"` // "" when no rule fired
	Priority    string   `json:"priority"`
	Flags       []string `json:"flags"`
	Rules       []string `json:"rules"` // fired rule ids, in pack order
}

// RevisionReplay is the replay of one rule-evaluated revision.
type RevisionReplay struct {
	Revision int      `json:"revision"`
	Stage    string   `json:"stage"`
	Pack     PackInfo `json:"rule_pack"`
	// Input says what was replayed: "snapshot" (the decided revision: trigger
	// plus context, as the pipeline's second rule run) or "trigger" (the
	// escalation: the trigger alone, as the pre-rules).
	Input    string      `json:"input"`
	Recorded RuleOutcome `json:"recorded"`
	Replayed RuleOutcome `json:"replayed"`
	// Match: same floor, same fired rules and the same hits (values, limits,
	// messages) as recorded.
	Match bool     `json:"match"`
	Diff  []string `json:"diff,omitempty"`
}

// ReplayResult is a decision replayed against the packs it recorded.
type ReplayResult struct {
	DecisionID string           `json:"decision_id"`
	Revisions  []RevisionReplay `json:"revisions"`
	Match      bool             `json:"match"` // every replayed revision matches
}

// Replay re-evaluates decision decisionID from its stored original bytes (the
// sealed snapshot, or the sealed trigger of an escalation-only revision) with
// the rule pack each revision recorded (resolved through packs, never the
// tenant's active pack) and compares the rule outcome with the recorded one.
// tx must be scoped to tenantID; the caller audits the access (the sealed
// parts are opened).
//
// What the replay takes from the record, and its limits:
//   - trigger and context: the sealed snapshot's exact bytes, verified
//     against the recorded snapshot hash and trigger sha256;
//   - the clock: the revision's recorded decision (or escalation) time;
//     the pipeline read its clock a moment earlier, which matters only for an
//     age band crossed within that moment;
//   - patient age: from the snapshot's Patient, as the pipeline did;
//   - "previously communicated": re-derived from replies released before the
//     revision's time;
//   - tenant rule configuration (code map, overrides): the tenant's current
//     one; the record does not keep it, so a changed configuration can make a
//     replay differ, and the diff then names the rules concerned.
func Replay(ctx context.Context, tx pgx.Tx, tenantID, decisionID string, sealer *seal.Sealer, packs PackResolver) (*ReplayResult, error) {
	if sealer == nil || packs == nil {
		return nil, errors.New("triage: replay needs a sealer and a pack resolver")
	}
	ex, err := Explain(ctx, tx, tenantID, decisionID, sealer)
	if err != nil {
		return nil, err
	}
	t, err := store.GetTenant(ctx, tx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("triage: replay: %w", err)
	}
	tc, err := tenantRules(t)
	if err != nil {
		return nil, fmt.Errorf("triage: replay: %w", err)
	}
	// The Patient (for age) comes from any stored snapshot of this decision:
	// every revision judges the same trigger version.
	var patient *fhir.Resource
	snaps := map[int]*fhir.Snapshot{}
	for _, r := range ex.Revisions {
		if r.Sealed == nil || len(r.Sealed.Snapshot) == 0 {
			continue
		}
		s, err := fhir.UnmarshalSnapshot(r.Sealed.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("triage: replay: revision %d snapshot: %w", r.Revision, err)
		}
		if r.Record.Snapshot != nil && r.Record.Snapshot.Hash != s.Hash {
			return nil, fmt.Errorf("triage: replay: revision %d: stored snapshot does not match the recorded hash: %w", r.Revision, fhir.ErrInvalid)
		}
		snaps[r.Revision] = s
		if s.Patient != nil {
			patient = s.Patient
		}
	}
	res := &ReplayResult{DecisionID: ex.Decision.ID, Match: true}
	for _, r := range ex.Revisions {
		rec := r.Record
		if rec.RulePack.SHA256 == "" || r.Sealed == nil || (r.Stage != StageEscalated && r.Stage != StageDecided) {
			continue // a review, or a record-unavailable revision: the rules did not run
		}
		rr := RevisionReplay{Revision: r.Revision, Stage: r.Stage, Pack: rec.RulePack, Recorded: ruleOutcome(rec.RuleHits)}
		var in rules.Input
		var now time.Time
		switch s := snaps[r.Revision]; {
		case s != nil:
			now = firstTime(rec.Times.Decided, rec.Times.Drafted, &rec.Times.Received)
			prev, err := communicatedBefore(ctx, tx, ex.Decision, now)
			if err != nil {
				return nil, err
			}
			in = rules.Input{Trigger: s.Trigger.Raw, Context: rawOf(s.Context), PatientAgeYears: ageYears(s.Patient, now),
				Now: now, Tenant: tc, PreviouslyCommunicated: prev}
			rr.Input = "snapshot"
		case len(r.Sealed.TriggerRaw) > 0:
			now = firstTime(rec.Times.Escalated, rec.Times.Decided, &rec.Times.Received)
			in = rules.Input{Trigger: r.Sealed.TriggerRaw, PatientAgeYears: ageYears(patient, now), Now: now, Tenant: tc}
			rr.Input = "trigger"
		default:
			continue
		}
		if want := rec.Trigger.SHA256; want != "" && fhir.Hash(in.Trigger) != want {
			return nil, fmt.Errorf("triage: replay: revision %d: stored trigger does not match the recorded sha256: %w", r.Revision, fhir.ErrInvalid)
		}
		pack, err := packs.Resolve(ctx, tx, tenantID, rec.RulePack)
		if err != nil {
			return nil, fmt.Errorf("triage: replay: revision %d: %w", r.Revision, err)
		}
		out, err := pack.Evaluate(in)
		if err != nil {
			return nil, fmt.Errorf("triage: replay: revision %d: %s", r.Revision, safeRuleErr(err))
		}
		rr.Replayed = ruleOutcome(out.Hits)
		rr.Diff = diffHits(rec.RuleHits, out.Hits)
		rr.Match = len(rr.Diff) == 0
		res.Match = res.Match && rr.Match
		res.Revisions = append(res.Revisions, rr)
	}
	if len(res.Revisions) == 0 {
		return nil, fmt.Errorf("triage: replay: decision %s has no revision with stored rule input: %w", decisionID, ErrNotFound)
	}
	return res, nil
}

// EvaluateRecorded evaluates a revision's stored snapshot with an arbitrary
// pack (e.g. the tenant's active one, to see what a new version would change).
func EvaluateRecorded(snapshot []byte, pack *rules.Pack, now time.Time, tc rules.TenantConfig) (RuleOutcome, error) {
	s, err := fhir.UnmarshalSnapshot(snapshot)
	if err != nil {
		return RuleOutcome{}, err
	}
	out, err := pack.Evaluate(rules.Input{Trigger: s.Trigger.Raw, Context: rawOf(s.Context), PatientAgeYears: ageYears(s.Patient, now), Now: now, Tenant: tc})
	if err != nil {
		return RuleOutcome{}, errors.New("triage: " + safeRuleErr(err))
	}
	return ruleOutcome(out.Hits), nil
}

func firstTime(ts ...*time.Time) time.Time {
	for _, t := range ts {
		if t != nil && !t.IsZero() {
			return *t
		}
	}
	return time.Time{}
}

// communicatedBefore is the pipeline's previouslyCommunicated as of at.
func communicatedBefore(ctx context.Context, tx pgx.Tx, d *Decision, at time.Time) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM decisions d JOIN review_items r ON r.tenant_id = d.tenant_id AND r.decision_id = d.id
		WHERE d.trigger_type = $1 AND d.trigger_id = $2 AND d.trigger_key <> $3 AND r.reply_released AND r.acted_at <= $4`,
		d.TriggerType, d.TriggerID, d.TriggerKey, at).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("triage: replay: previous communications: %w", err)
	}
	return n > 0, nil
}

// ruleOutcome summarises hits the way rules.Evaluate does: the most severe
// disposition and priority, the union of flags, the fired rule ids.
func ruleOutcome(hits []rules.Hit) RuleOutcome {
	o := RuleOutcome{Flags: []string{}, Rules: []string{}}
	var d rules.Disposition
	var p rules.Priority
	var f rules.Flags
	for _, h := range hits {
		d, p = rules.MaxDisposition(d, h.Disposition), rules.MaxPriority(p, h.Priority)
		f = f.Union(h.Flags...)
		o.Rules = append(o.Rules, h.RuleID)
	}
	o.Disposition, o.Priority = d.String(), p.String()
	if fs := f.Strings(); fs != nil {
		o.Flags = fs
	}
	return o
}

// diffHits lists what differs between recorded and replayed hits (rule ids,
// floor, and each hit's values and message), without patient data beyond
// rule ids.
func diffHits(recorded, replayed []rules.Hit) []string {
	a, b := ruleOutcome(recorded), ruleOutcome(replayed)
	var d []string
	if a.Disposition != b.Disposition {
		d = append(d, fmt.Sprintf("disposition: recorded %q, replayed %q", a.Disposition, b.Disposition))
	}
	if a.Priority != b.Priority {
		d = append(d, fmt.Sprintf("priority: recorded %q, replayed %q", a.Priority, b.Priority))
	}
	if !slices.Equal(a.Flags, b.Flags) {
		d = append(d, fmt.Sprintf("flags: recorded %v, replayed %v", a.Flags, b.Flags))
	}
	if !slices.Equal(a.Rules, b.Rules) {
		d = append(d, fmt.Sprintf("rules: recorded %v, replayed %v", a.Rules, b.Rules))
		return d
	}
	for i := range recorded {
		x, _ := json.Marshal(recorded[i])
		y, _ := json.Marshal(replayed[i])
		if !bytes.Equal(x, y) {
			d = append(d, fmt.Sprintf("rule %s: values, limits or message differ", recorded[i].RuleID))
		}
	}
	return d
}
