package triage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage/ground"
)

// SourceProvider returns the FHIR source for a tenant.
type SourceProvider interface {
	Source(ctx context.Context, t *store.Tenant) (fhir.Source, error)
}

// DrafterProvider returns the model drafter for a tenant (nil when its LLM mode is off).
type DrafterProvider interface {
	Drafter(ctx context.Context, t *store.Tenant) (llm.Drafter, error)
}

// PackProvider returns the rule pack a tenant has active, and compiles a
// recorded version for replay.
type PackProvider interface {
	Active(ctx context.Context, tenantID string) (*rules.Pack, error)
}

// Config tunes the pipeline. Zero values take the documented defaults.
type Config struct {
	// ContextObservations caps the Observations pulled into a snapshot (default 200).
	ContextObservations int
	// DraftTimeout bounds the whole drafting step, retries included (default 60 s);
	// the drafter's own per-call timeout comes from the tenant.
	DraftTimeout time.Duration
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.ContextObservations == 0 {
		c.ContextObservations = 200
	}
	if c.DraftTimeout == 0 {
		c.DraftTimeout = 60 * time.Second
	}
	return c
}

// Deps are the pipeline's collaborators.
type Deps struct {
	DB       *store.DB
	Sealer   *seal.Sealer
	Sources  SourceProvider
	Drafters DrafterProvider
	Packs    PackProvider
	Enqueue  Enqueuer
	Now      func() time.Time
	Logger   *slog.Logger
}

// Pipeline turns an intake event into a decision. Safe for concurrent use;
// Process is idempotent per trigger version.
type Pipeline struct {
	d        Deps
	cfg      Config
	baseline *llm.Baseline
}

// NewPipeline checks deps and returns a pipeline.
func NewPipeline(d Deps, cfg Config) (*Pipeline, error) {
	if d.DB == nil || d.Sealer == nil || d.Sources == nil || d.Drafters == nil || d.Packs == nil || d.Enqueue == nil {
		return nil, errors.New("triage: pipeline needs DB, Sealer, Sources, Drafters, Packs and Enqueue")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{d: d, cfg: cfg.WithDefaults(), baseline: llm.NewBaseline()}, nil
}

// Result says what Process did, without PHI.
type Result struct {
	DecisionID  string
	Disposition rules.Disposition
	Priority    rules.Priority
	Escalated   bool // the escalation was committed before drafting
	Duplicate   bool // the trigger version was already decided
}

// job is the state of one Process call.
type job struct {
	tenant   *store.Tenant
	intake   *intakeRow
	trig     *fhir.Resource
	patient  *fhir.Resource
	key      string
	pack     *rules.Pack
	rin      rules.Input
	now      time.Time
	src      fhir.Source
	existing *Decision
	log      *slog.Logger
}

// Intake runs steps 1-2 only: it reads the trigger, runs the pre-rules,
// commits an escalation if one fires, and enqueues the rest of the pipeline
// (Process) as a separate job on its own queue. It never calls the model, so
// a slow or hanging model can never hold up the next critical value.
func (p *Pipeline) Intake(ctx context.Context, tenantID, intakeEventID string) (*Result, error) {
	j, res, done, err := p.begin(ctx, tenantID, intakeEventID, true)
	if err != nil || done {
		return res, err
	}
	err = p.d.DB.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		_, err := p.d.Enqueue.EnqueueDraft(ctx, tx, tenantID, j.intake.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("triage: enqueue drafting: %w", err)
	}
	return res, nil
}

// Process runs the whole pipeline for one intake event, in the order
// ARCHITECTURE.md gives. It is idempotent: an escalation Intake already
// committed is not committed again, and a decided trigger version is left as is.
func (p *Pipeline) Process(ctx context.Context, tenantID, intakeEventID string) (*Result, error) {
	j, res, done, err := p.begin(ctx, tenantID, intakeEventID, false)
	if err != nil || done {
		return res, err
	}
	return p.finish(ctx, j, res)
}

// begin is steps 1-2. done reports that the event needs nothing more
// (already decided, or decided MANUAL_TRIAGE because the record is unavailable).
func (p *Pipeline) begin(ctx context.Context, tenantID, intakeEventID string, intakeOnly bool) (*job, *Result, bool, error) {
	j := &job{now: p.d.Now().UTC()}
	err := p.d.DB.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		if j.tenant, err = store.GetTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		j.intake, err = loadIntake(ctx, tx, tenantID, intakeEventID)
		return err
	})
	if err != nil {
		return nil, nil, false, err
	}
	j.log = p.d.Logger.With("tenant_id", tenantID, "intake_event_id", intakeEventID)

	// 1. Trigger and Patient, pinned.
	if j.src, err = p.d.Sources.Source(ctx, j.tenant); err != nil {
		return nil, nil, false, fmt.Errorf("triage: fhir source: %w", err)
	}
	j.trig, j.patient, err = fhir.ReadTrigger(ctx, j.src, j.intake.Trigger)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, false, ctx.Err()
		}
		j.log.WarnContext(ctx, "trigger unreadable; manual triage", "reason", fhirReason(err))
		res, err := p.recordUnavailable(ctx, j, fhirReason(err))
		return nil, res, true, err
	}
	if j.trig.Type != j.intake.Trigger.Type || j.trig.ID != j.intake.Trigger.ID {
		res, err := p.recordUnavailable(ctx, j, "record invalid: server returned a different resource")
		return nil, res, true, err
	}
	j.key = fhir.DecisionKey(j.trig)
	if j.pack, err = p.d.Packs.Active(ctx, tenantID); err != nil {
		return nil, nil, false, fmt.Errorf("triage: rule pack: %w", err)
	}
	ruleCfg, err := tenantRules(j.tenant)
	if err != nil {
		return nil, nil, false, err
	}
	j.rin = rules.Input{Trigger: j.trig.Raw, PatientAgeYears: ageYears(j.patient, j.now), Now: j.now, Tenant: ruleCfg}

	if j.existing, err = p.findDecision(ctx, j); err != nil {
		return nil, nil, false, err
	}
	if e := j.existing; e != nil && e.Stage != StageEscalated {
		return nil, &Result{DecisionID: e.ID, Disposition: e.Outcome.Disposition, Priority: e.Outcome.Priority, Duplicate: true}, true, nil
	}

	// 2. Pre-rules on the trigger alone; an escalation commits before anything slow.
	pre, err := j.pack.Evaluate(j.rin)
	if err != nil {
		res, err := p.recordUnavailable(ctx, j, "record invalid: "+safeRuleErr(err))
		return nil, res, true, err
	}
	res := &Result{}
	if j.existing == nil && pre.Escalates() {
		if j.existing, err = p.commitEscalation(ctx, j, pre); err != nil {
			return nil, nil, false, err
		}
		res.Escalated = true
		j.log.InfoContext(ctx, "escalation committed", "decision_id", j.existing.ID, "rules", hitIDs(pre.Hits))
	}
	if j.existing != nil {
		res.DecisionID, res.Disposition, res.Priority = j.existing.ID, j.existing.Outcome.Disposition, j.existing.Outcome.Priority
	}
	return j, res, false, nil
}

// finish is steps 3-7.
func (p *Pipeline) finish(ctx context.Context, j *job, res *Result) (*Result, error) {
	src, existing, log := j.src, j.existing, j.log
	// 3. Context snapshot.
	opts := fhir.ContextOptions{Now: j.now, MaxObservations: p.cfg.ContextObservations}
	if d := j.tenant.Config.FHIR.ObservationDays; d > 0 {
		opts.ObservationWindow = time.Duration(d) * 24 * time.Hour
	}
	snap, err := fhir.BuildSnapshot(ctx, src, j.trig, j.patient, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.WarnContext(ctx, "context unreadable; manual triage", "reason", fhirReason(err))
		return p.recordUnavailable(ctx, j, fhirReason(err))
	}

	// Full rules with context (amended results of communicated ones, trends).
	j.rin.Context = rawOf(snap.Context)
	j.rin.PreviouslyCommunicated, err = p.previouslyCommunicated(ctx, j)
	if err != nil {
		return nil, err
	}
	floor, err := j.pack.Evaluate(j.rin)
	if err != nil {
		return p.recordUnavailable(ctx, j, "record invalid: "+safeRuleErr(err))
	}

	// 4-6. Draft, ground, decide.
	fin := p.draftAndDecide(ctx, j, snap, floor)
	if existing != nil {
		fin.prev = &existing.Outcome
		fin.decisionID = existing.ID
		fin.out = raise(existing.Outcome, fin.out)
	}

	// 7. Commit the decision's next revision.
	dec, dup, err := p.commitFinal(ctx, j, snap, floor, fin)
	if err != nil {
		return nil, err
	}
	res.DecisionID, res.Disposition, res.Priority, res.Duplicate = dec.ID, dec.Outcome.Disposition, dec.Outcome.Priority, dup
	log.InfoContext(ctx, "decision committed", "decision_id", dec.ID, "disposition", dec.Outcome.Disposition.String(),
		"priority", dec.Outcome.Priority.String(), "flags", dec.Outcome.Flags.Strings())
	return res, nil
}

// final is the outcome of steps 4-6 plus what must be recorded.
type final struct {
	out        Outcome
	prev       *Outcome
	decisionID string
	draft      *llm.Result
	draftInfo  *DraftInfo
	shadow     *DraftInfo
	grounding  *ground.Result
	confidence *Confidence
	sealed     Sealed
}

func (p *Pipeline) draftAndDecide(ctx context.Context, j *job, snap *fhir.Snapshot, floor rules.Outcome) *final {
	f := &final{}
	req := llm.Request{Snapshot: snap, Queues: j.tenant.Config.Queues, ExcludedLabels: j.tenant.Config.ExcludedLabels,
		PatientAgeYears: j.rin.PatientAgeYears, Now: j.now}
	status, reason := DraftOK, ""

	var model llm.Drafter
	mode := j.tenant.Config.LLM.Mode
	if mode != store.LLMOff {
		var err error
		if model, err = p.d.Drafters.Drafter(ctx, j.tenant); err != nil {
			status, reason = DraftUnavailable, "drafter not configured: "+err.Error()
			model = nil
		}
	}

	var primary *llm.Result
	if model != nil {
		dctx, cancel := context.WithTimeout(ctx, p.cfg.DraftTimeout)
		r, err := model.Draft(dctx, req)
		cancel()
		info := draftInfo(model.Name(), r, err)
		if r != nil {
			f.sealed.LLMRequest, f.sealed.LLMResponse = r.Call.RequestBody, r.Call.ResponseBody
		}
		if mode == store.LLMShadow {
			f.shadow = info
			info.Shadow = true
			if err == nil {
				f.sealed.ShadowLLMDraft, _ = json.Marshal(r.Draft)
			}
		} else if err != nil {
			status, reason = draftStatus(err)
		} else {
			primary = r
			f.draftInfo = info
		}
	}
	if primary == nil {
		// Baseline: no model, shadow mode, or the model failed (then the item goes to a person).
		r, err := p.baseline.Draft(ctx, req)
		if err != nil {
			status, reason = DraftInvalid, "baseline drafter: "+err.Error()
			r = &llm.Result{Draft: llm.Draft{Priority: rules.Routine, Route: QueueTriage, Baseline: true}}
		}
		primary = r
		bi := draftInfo(p.baseline.Name(), r, nil)
		if f.draftInfo != nil || status != DraftOK {
			bi.Status, bi.StatusReason = statusName(status), reason
		}
		f.draftInfo = bi
	}
	d := primary.Draft
	f.draft = primary
	f.sealed.DraftRationale = d.Rationale
	f.sealed.ReplyDraft = d.ReplyDraft
	for _, c := range d.Claims {
		f.sealed.DraftClaims = append(f.sealed.DraftClaims, ClaimText{Text: c.Text, Evidence: c.Evidence})
	}

	// The rule floor is not passed to the verifier: a draft that proposes less
	// urgency than the rules is not an invented fact; Decide overrides it and
	// flags ai_overridden.
	g := ground.Verify(snap, d, ground.Options{Now: j.now})
	f.grounding = &g
	agrees := floor.Disposition == rules.DispositionNone || d.Priority >= floor.Priority
	eff := ground.EffectiveConfidence(d.Confidence, g, agrees)
	route := d.Route
	if route == "" {
		route = QueueTriage
	}
	th := j.tenant.Config.Threshold(route)
	f.confidence = &Confidence{Raw: d.Confidence, Effective: eff, Threshold: th, Route: route}

	f.out = Decide(DecideInput{
		Floor: floor, DraftStatus: status, DraftReason: reason,
		DraftPriority: d.Priority, DraftRoute: route, Baseline: d.Baseline,
		Grounded: g.Grounded, Confidence: eff, Threshold: th,
	})
	return f
}

func draftStatus(err error) (DraftStatus, string) {
	var oe *llm.OutputError
	switch {
	case errors.As(err, &oe):
		return DraftInvalid, oe.Reason
	case errors.Is(err, llm.ErrInvalidOutput):
		return DraftInvalid, "invalid output"
	case errors.Is(err, llm.ErrExcluded):
		return DraftExcluded, "the trigger carries a sensitivity label the tenant excludes from the model"
	case errors.Is(err, llm.ErrEndpointNotAllowed):
		return DraftUnavailable, "endpoint not on the tenant's BAA allowlist"
	case errors.Is(err, context.DeadlineExceeded):
		return DraftUnavailable, "timed out"
	default:
		return DraftUnavailable, "model unavailable"
	}
}

func statusName(s DraftStatus) string {
	switch s {
	case DraftUnavailable:
		return "unavailable"
	case DraftInvalid:
		return "invalid"
	case DraftExcluded:
		return "excluded"
	}
	return "ok"
}

func draftInfo(name string, r *llm.Result, err error) *DraftInfo {
	info := &DraftInfo{Drafter: name, Status: "ok"}
	if err != nil {
		st, reason := draftStatus(err)
		info.Status, info.StatusReason = statusName(st), reason
	}
	if r == nil {
		return info
	}
	c := r.Call
	info.Model, info.Endpoint, info.PromptID, info.PromptVersion = c.Model, c.Endpoint, c.PromptID, c.PromptVersion
	info.Params, info.PromptTokens, info.OutputTokens, info.Attempts = c.Params, c.PromptTokens, c.CompletionTokens, c.Attempts
	info.LatencyMS = c.Latency.Milliseconds()
	if len(c.ResponseBody) > 0 {
		info.ResponseSHA = fhir.Hash(c.ResponseBody)
	}
	if err == nil {
		info.Baseline = r.Draft.Baseline
		info.Priority = r.Draft.Priority.String()
		info.Route = r.Draft.Route
		info.Claims = len(r.Draft.Claims)
		info.HasReply = r.Draft.ReplyDraft != ""
	}
	return info
}

// fhirReason turns a FHIR error into a reason without PHI.
func fhirReason(err error) string {
	switch {
	case errors.Is(err, fhir.ErrNotFound):
		return "record unavailable: resource not found on the FHIR server"
	case errors.Is(err, fhir.ErrUnavailable):
		return "record unavailable: FHIR server unreachable after bounded retries"
	case errors.Is(err, fhir.ErrInvalid):
		return "record invalid: the FHIR server returned content that is not valid FHIR"
	default:
		return "record unavailable"
	}
}

// safeRuleErr never quotes the error text: rule errors may carry resource content.
func safeRuleErr(error) string { return "the rules could not read the trigger" }

func tenantRules(t *store.Tenant) (rules.TenantConfig, error) {
	var c rules.TenantConfig
	if len(t.Config.Rules) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(t.Config.Rules, &c); err != nil {
		return c, fmt.Errorf("triage: tenant %s rules config: %w", t.ID, err)
	}
	return c, nil
}

func rawOf(rs []*fhir.Resource) []json.RawMessage {
	out := make([]json.RawMessage, len(rs))
	for i, r := range rs {
		out[i] = r.Raw
	}
	return out
}

func hitIDs(hs []rules.Hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.RuleID
	}
	return out
}

// ageYears computes age from Patient.birthDate; nil when unknown.
func ageYears(patient *fhir.Resource, now time.Time) *float64 {
	if patient == nil {
		return nil
	}
	var p struct {
		BirthDate string `json:"birthDate"`
	}
	if json.Unmarshal(patient.Raw, &p) != nil || p.BirthDate == "" {
		return nil
	}
	var bd time.Time
	var err error
	for _, layout := range []string{"2006-01-02", "2006-01", "2006"} {
		if bd, err = time.Parse(layout, p.BirthDate); err == nil {
			break
		}
	}
	if err != nil || bd.After(now) {
		return nil
	}
	years := now.Sub(bd).Hours() / 24 / 365.2425
	return &years
}

// Pseudonym is a stable, keyed, non-reversible label for a patient reference,
// safe for logs and tables.
func Pseudonym(salt, patientRef string) string {
	if patientRef == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(salt))
	m.Write([]byte(patientRef))
	return "pt-" + hex.EncodeToString(m.Sum(nil))[:10]
}
