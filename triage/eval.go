package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/store"
)

// Evaluation defaults.
const (
	// DefaultEvalThreshold is EvalConfig.Threshold when it is 0 (the tenant default).
	DefaultEvalThreshold = 0.8
	// DefaultTargetPrecision is EvalConfig.TargetPrecision when it is 0.
	DefaultTargetPrecision = 0.95
	// maxEvalCaseBytes bounds one case file.
	maxEvalCaseBytes = 1 << 20
)

// EvalPriorities is the order of the confusion matrix's rows and columns,
// most urgent first.
var EvalPriorities = []rules.Priority{rules.Stat, rules.ASAP, rules.Urgent, rules.Routine}

// EvalCalibrationBins are the lower edges of the calibration bins; the last
// bin is closed above ([0.8, 1.0]).
var EvalCalibrationBins = []float64{0, 0.2, 0.4, 0.6, 0.8}

// EvalLabel is what a triage nurse would assign to a case.
type EvalLabel struct {
	Priority rules.Priority `json:"priority"`
	Route    string         `json:"route"`
	// Disposition is optional; DispositionNone means not labelled.
	Disposition rules.Disposition `json:"disposition,omitempty"`
}

// EvalCase is one labelled case: a trigger resource laid over the loaded
// FHIR records, with optional extra context resources.
type EvalCase struct {
	// Name identifies the case in reports; it must not contain PHI.
	Name string `json:"name"`
	// Patient, when set ("Patient/<id>"), must be the patient the trigger names.
	Patient string `json:"patient,omitempty"`
	// Trigger is the FHIR resource that is triaged (with resourceType and id).
	Trigger json.RawMessage `json:"trigger"`
	// Context resources are stored before the trigger (prior results, messages).
	Context []json.RawMessage `json:"context,omitempty"`
	// PreviouslyCommunicated says the patient was already told this result
	// (the pipeline reads it from earlier decisions).
	PreviouslyCommunicated bool `json:"previously_communicated,omitempty"`
	// Label is the expected outcome.
	Label EvalLabel `json:"label"`
	// File is the case file's name (set by LoadEvalCases).
	File string `json:"-"`
}

// LoadEvalCases reads every *.json file in dir of fsys (not recursive, in
// name order) as one EvalCase and checks it. Errors name the file.
func LoadEvalCases(fsys fs.FS, dir string) ([]EvalCase, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("triage: eval cases: %w", err)
	}
	var out []EvalCase
	names := map[string]string{}
	for _, de := range entries {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("triage: eval case %s: %w", de.Name(), err)
		}
		if len(b) > maxEvalCaseBytes {
			return nil, fmt.Errorf("triage: eval case %s: larger than %d bytes", de.Name(), maxEvalCaseBytes)
		}
		c, err := ParseEvalCase(b)
		if err != nil {
			return nil, fmt.Errorf("triage: eval case %s: %w", de.Name(), err)
		}
		c.File = de.Name()
		if prev, dup := names[c.Name]; dup {
			return nil, fmt.Errorf("triage: eval case %s: name %q already used by %s", de.Name(), c.Name, prev)
		}
		names[c.Name] = c.File
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("triage: eval cases: no *.json case files in %s", dir)
	}
	return out, nil
}

// ParseEvalCase decodes and checks one case file.
func ParseEvalCase(b []byte) (EvalCase, error) {
	var c EvalCase
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("not a case file: %w", err)
	}
	if strings.TrimSpace(c.Name) == "" {
		return c, errors.New("name is required")
	}
	if err := checkResource(c.Trigger); err != nil {
		return c, fmt.Errorf("trigger: %w", err)
	}
	for i, r := range c.Context {
		if err := checkResource(r); err != nil {
			return c, fmt.Errorf("context[%d]: %w", i, err)
		}
	}
	if c.Patient != "" {
		if ref, err := fhir.ParseRef(c.Patient); err != nil || ref.Type != "Patient" {
			return c, errors.New(`patient must be "Patient/<id>"`)
		}
	}
	if c.Label.Priority == rules.PriorityNone {
		return c, errors.New("label.priority is required (stat, asap, urgent or routine)")
	}
	if c.Label.Route == "" {
		return c, errors.New("label.route is required")
	}
	return c, nil
}

func checkResource(raw json.RawMessage) error {
	var h struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &h) != nil {
		return errors.New("must be a FHIR resource (JSON object)")
	}
	if h.ResourceType == "" || h.ID == "" {
		return errors.New("resourceType and id are required")
	}
	return nil
}

// EvalConfig configures an evaluation. Zero values take the documented defaults.
type EvalConfig struct {
	// Records holds the FHIR records every case is laid over (bundles or
	// single resources, loaded with fhir.Store.LoadFS at RecordsDir, default ".").
	// Required; e.g. fixtures.Synthea().
	Records    fs.FS
	RecordsDir string
	// Drafter drafts as a tenant with LLM mode "on" would; nil uses the baseline
	// drafter (LLM mode "off").
	Drafter llm.Drafter
	// Pack is the rule pack (default rules.DefaultPack()).
	Pack *rules.Pack
	// Queues are the allowed routes (default store.DefaultQueues()).
	Queues []string
	// Threshold is the confidence threshold of every route (default 0.8).
	Threshold float64
	// TargetPrecision is the draft precision the threshold search aims for (default 0.95).
	TargetPrecision float64
	// Now is the evaluation's clock (default time.Now at the start of Eval).
	Now time.Time
	// DraftTimeout bounds one case's drafting step (default 60 s).
	DraftTimeout time.Duration
	// ContextObservations caps the Observations in a snapshot (default 200).
	ContextObservations int
	// Parallel is the number of cases evaluated at once (default 1). Results
	// keep the cases' order whatever it is.
	Parallel int
}

// EvalRatio is agree/total with its rate (0 when total is 0).
type EvalRatio struct {
	Agree int     `json:"agree"`
	Total int     `json:"total"`
	Rate  float64 `json:"rate"`
}

func ratio(a, t int) EvalRatio {
	r := EvalRatio{Agree: a, Total: t}
	if t > 0 {
		r.Rate = float64(a) / float64(t)
	}
	return r
}

// EvalAgreement compares the final decision with the labels.
type EvalAgreement struct {
	Priority EvalRatio `json:"priority"`
	Route    EvalRatio `json:"route"`
	// Disposition counts only cases whose label names a disposition.
	Disposition EvalRatio `json:"disposition"`
}

// EvalConfusion is the priority confusion matrix: Counts[i][j] is the number
// of cases labelled Labels[i] whose final priority is Labels[j].
type EvalConfusion struct {
	Labels []string `json:"labels"`
	Counts [][]int  `json:"counts"`
}

// EvalGrounding summarises the drafting and grounding step.
type EvalGrounding struct {
	// Drafts is the number of drafts the configured drafter produced.
	Drafts int `json:"drafts"`
	// Ungrounded drafts failed verification; RejectionRate = Ungrounded / Drafts.
	Ungrounded    int     `json:"ungrounded"`
	RejectionRate float64 `json:"rejection_rate"`
	// Invalid and Unavailable count model answers that were not a valid
	// draft, or no answer in time; Excluded counts triggers never sent.
	Invalid     int `json:"invalid"`
	Unavailable int `json:"unavailable"`
	Excluded    int `json:"excluded"`
}

// EvalBin is one calibration bin: drafts whose effective confidence is in
// [Low, High) ([Low, High] for the last), and how many had the labelled
// priority and route.
type EvalBin struct {
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
	Count    int     `json:"count"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	// MeanConfidence is the mean effective confidence in the bin.
	MeanConfidence float64 `json:"mean_confidence"`
}

// EvalOperatingPoint is what a confidence threshold gives: grounded drafts
// at or above it, their precision and the fraction of all cases they cover.
type EvalOperatingPoint struct {
	Threshold float64 `json:"threshold"`
	Covered   int     `json:"covered"`
	Correct   int     `json:"correct"`
	Precision float64 `json:"precision"`
	Coverage  float64 `json:"coverage"`
}

// EvalTarget is the result of the threshold search.
type EvalTarget struct {
	Precision float64 `json:"target_precision"`
	Reached   bool    `json:"reached"`
	// Point is the smallest threshold reaching the target (when Reached).
	Point *EvalOperatingPoint `json:"point,omitempty"`
}

// EvalCaseResult is one case's outcome. It carries no message text, rule
// messages or values: only labels, codes, rule ids and numbers.
type EvalCaseResult struct {
	Name  string    `json:"name"`
	File  string    `json:"file"`
	Label EvalLabel `json:"label"`

	Disposition rules.Disposition `json:"disposition"`
	Priority    rules.Priority    `json:"priority"`
	Queue       string            `json:"queue"`
	Flags       []string          `json:"flags"`

	DraftStatus   string         `json:"draft_status"` // ok, invalid, unavailable, excluded
	DraftPriority rules.Priority `json:"draft_priority"`
	DraftRoute    string         `json:"draft_route"`
	Baseline      bool           `json:"baseline"`
	Grounded      bool           `json:"grounded"`
	RawConfidence float64        `json:"raw_confidence"`
	Confidence    float64        `json:"confidence"` // effective
	Threshold     float64        `json:"threshold"`

	// SnapshotContext is the number of context resources in the snapshot.
	SnapshotContext int `json:"snapshot_context"`

	PreRules []string `json:"pre_rules"` // fired on the trigger alone
	Rules    []string `json:"rules"`     // fired with context

	PriorityAgrees    bool  `json:"priority_agrees"`
	RouteAgrees       bool  `json:"route_agrees"`
	DispositionAgrees *bool `json:"disposition_agrees,omitempty"`
	DraftCorrect      bool  `json:"draft_correct"`
	// Unavailable is the PHI-free reason when the record could not be read
	// or judged (the pipeline's "record unavailable" path).
	Unavailable string `json:"unavailable,omitempty"`
}

// EvalReport is the whole evaluation.
type EvalReport struct {
	Drafter        string             `json:"drafter"`
	Model          string             `json:"model,omitempty"`
	RulePack       string             `json:"rule_pack"`
	RulePackSHA256 string             `json:"rule_pack_sha256"`
	Threshold      float64            `json:"threshold"`
	Now            time.Time          `json:"now"`
	Cases          int                `json:"cases"`
	Dispositions   map[string]int     `json:"dispositions"`
	Agreement      EvalAgreement      `json:"agreement"`
	Confusion      EvalConfusion      `json:"confusion"`
	Grounding      EvalGrounding      `json:"grounding"`
	Calibration    []EvalBin          `json:"calibration"`
	AtThreshold    EvalOperatingPoint `json:"at_threshold"`
	Target         EvalTarget         `json:"target"`
	Results        []EvalCaseResult   `json:"results"`
}

// evalDrafters hands the pipeline one fixed drafter.
type evalDrafters struct{ d llm.Drafter }

func (e evalDrafters) Drafter(context.Context, *store.Tenant) (llm.Drafter, error) { return e.d, nil }

// Eval runs cases through the pipeline's steps 1-7 in memory, as a tenant
// configured by cfg would: read the trigger and Patient through fhir.Source,
// pre-rules, snapshot, rules with context, draft, ground, effective
// confidence and Decide. It writes nothing: no database is used. Each case's
// context and trigger live in a store of their own laid over the shared,
// read-only cfg.Records, so cases never see each other.
func Eval(ctx context.Context, cfg EvalConfig, cases []EvalCase) (*EvalReport, error) {
	if cfg.Records == nil {
		return nil, errors.New("triage: eval: EvalConfig.Records is required")
	}
	if cfg.RecordsDir == "" {
		cfg.RecordsDir = "."
	}
	if cfg.Pack == nil {
		var err error
		if cfg.Pack, err = rules.DefaultPack(); err != nil {
			return nil, fmt.Errorf("triage: eval: default rule pack: %w", err)
		}
	}
	if len(cfg.Queues) == 0 {
		cfg.Queues = store.DefaultQueues()
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultEvalThreshold
	}
	if cfg.TargetPrecision == 0 {
		cfg.TargetPrecision = DefaultTargetPrecision
	}
	switch {
	case cfg.Threshold < 0 || cfg.Threshold > 1:
		return nil, fmt.Errorf("triage: eval: threshold %v: want 0..1", cfg.Threshold)
	case cfg.TargetPrecision < 0 || cfg.TargetPrecision > 1:
		return nil, fmt.Errorf("triage: eval: target precision %v: want 0..1", cfg.TargetPrecision)
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	cfg.Now = cfg.Now.UTC()
	for _, c := range cases {
		if !slices.Contains(cfg.Queues, c.Label.Route) {
			return nil, fmt.Errorf("triage: eval case %s: label.route %q is not a queue (%s)", caseID(c), c.Label.Route, strings.Join(cfg.Queues, ", "))
		}
	}

	mode := store.LLMOff
	if cfg.Drafter != nil {
		mode = store.LLMOn
	}
	tenant := &store.Tenant{ID: "eval", Name: "eval", Config: store.TenantConfig{
		LLM:        store.LLMConfig{Mode: mode},
		Thresholds: map[string]float64{"default": cfg.Threshold},
		Queues:     cfg.Queues,
	}.WithDefaults()}
	p := &Pipeline{
		d:        Deps{Drafters: evalDrafters{cfg.Drafter}, Now: func() time.Time { return cfg.Now }},
		cfg:      Config{DraftTimeout: cfg.DraftTimeout, ContextObservations: cfg.ContextObservations}.WithDefaults(),
		baseline: llm.NewBaseline(),
	}

	base := fhir.NewStore()
	base.SetClock(func() time.Time { return cfg.Now })
	if _, err := base.LoadFS(cfg.Records, cfg.RecordsDir); err != nil {
		return nil, fmt.Errorf("triage: eval: records: %w", err)
	}

	rep := &EvalReport{
		Drafter: "baseline", RulePack: cfg.Pack.Name() + " " + cfg.Pack.Version(), RulePackSHA256: cfg.Pack.SHA256(),
		Threshold: cfg.Threshold, Now: cfg.Now, Dispositions: map[string]int{},
	}
	if cfg.Drafter != nil {
		rep.Drafter = cfg.Drafter.Name()
	}
	results := make([]EvalCaseResult, len(cases))
	models := make([]string, len(cases))
	errs := make([]error, len(cases))
	sem := make(chan struct{}, max(cfg.Parallel, 1))
	var wg sync.WaitGroup
	for i, c := range cases {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i], models[i], errs[i] = evalCase(ctx, p, tenant, cfg, base, c)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("triage: eval case %s: %w", caseID(cases[i]), err)
		}
		if rep.Model == "" {
			rep.Model = models[i]
		}
	}
	rep.Results = results
	rep.summarise(cfg.TargetPrecision)
	return rep, nil
}

func caseID(c EvalCase) string {
	if c.File != "" {
		return c.File
	}
	return fmt.Sprintf("%q", c.Name)
}

// evalCase runs one case. An error means the case file itself is unusable;
// a record the pipeline could not read or judge is a result (MANUAL_TRIAGE,
// record_unavailable), as it would be in production.
func evalCase(ctx context.Context, p *Pipeline, tenant *store.Tenant, cfg EvalConfig, base *fhir.Store, c EvalCase) (EvalCaseResult, string, error) {
	res := EvalCaseResult{Name: c.Name, File: c.File, Label: c.Label, Flags: []string{}, PreRules: []string{}, Rules: []string{}}
	now := cfg.Now
	top := fhir.NewStore()
	top.SetClock(func() time.Time { return now })
	for i, raw := range c.Context {
		if _, err := top.Put(raw); err != nil {
			return res, "", fmt.Errorf("context[%d]: %w", i, err)
		}
	}
	stored, err := top.Put(c.Trigger)
	if err != nil {
		return res, "", fmt.Errorf("trigger: %w", err)
	}
	src := overlaySource{top: top, base: base}

	// 1. Trigger and Patient, pinned, through fhir.Source.
	trig, patient, err := fhir.ReadTrigger(ctx, src, stored.Ref())
	if err != nil {
		if ctx.Err() != nil {
			return res, "", ctx.Err()
		}
		return unavailable(res, fhirReason(err)), "", nil
	}
	if c.Patient != "" && (patient == nil || "Patient/"+patient.ID != c.Patient) {
		return res, "", fmt.Errorf("the trigger does not name %s", c.Patient)
	}
	rin := rules.Input{Trigger: trig.Raw, PatientAgeYears: ageYears(patient, now), Now: now}

	// 2. Pre-rules on the trigger alone.
	pre, err := cfg.Pack.Evaluate(rin)
	if err != nil {
		return unavailable(res, "record invalid: "+safeRuleErr(err)), "", nil
	}
	res.PreRules = append(res.PreRules, hitIDs(pre.Hits)...)
	var escalation *Outcome
	if pre.Escalates() {
		e := EscalationOutcome(pre)
		escalation = &e
	}

	// 3. Snapshot, then the full rules with context.
	snap, err := fhir.BuildSnapshot(ctx, src, trig, patient, fhir.ContextOptions{Now: now, MaxObservations: p.cfg.ContextObservations})
	if err != nil {
		if ctx.Err() != nil {
			return res, "", ctx.Err()
		}
		return raiseUnavailable(unavailable(res, fhirReason(err)), escalation), "", nil
	}
	res.SnapshotContext = len(snap.Context)
	rin.Context = rawOf(snap.Context)
	rin.PreviouslyCommunicated = c.PreviouslyCommunicated
	floor, err := cfg.Pack.Evaluate(rin)
	if err != nil {
		return raiseUnavailable(unavailable(res, "record invalid: "+safeRuleErr(err)), escalation), "", nil
	}
	res.Rules = append(res.Rules, hitIDs(floor.Hits)...)

	// 4-6. Draft, ground, effective confidence and Decide: the pipeline's own step.
	j := &job{tenant: tenant, trig: trig, patient: patient, pack: cfg.Pack, rin: rin, now: now, src: src}
	fin := p.draftAndDecide(ctx, j, snap, floor)
	out := fin.out
	if escalation != nil {
		out = raise(*escalation, out)
	}

	res.Disposition, res.Priority, res.Queue = out.Disposition, out.Priority, out.Queue
	res.Flags = append(res.Flags, out.Flags.Strings()...)
	if fin.draftInfo != nil {
		res.DraftStatus = fin.draftInfo.Status
	}
	if fin.draft != nil {
		res.DraftPriority, res.DraftRoute, res.Baseline = fin.draft.Draft.Priority, fin.draft.Draft.Route, fin.draft.Draft.Baseline
	}
	if fin.grounding != nil {
		res.Grounded = fin.grounding.Grounded
	}
	if fin.confidence != nil {
		res.RawConfidence, res.Confidence, res.Threshold = fin.confidence.Raw, fin.confidence.Effective, fin.confidence.Threshold
		if res.DraftRoute == "" {
			res.DraftRoute = fin.confidence.Route
		}
	}
	res.DraftCorrect = res.DraftPriority == c.Label.Priority && res.DraftRoute == c.Label.Route
	model := ""
	if fin.draftInfo != nil && !fin.draftInfo.Baseline && fin.draftInfo.Status == "ok" {
		model = fin.draftInfo.Model
	}
	return score(res), model, nil
}

// unavailable is the pipeline's record-unavailable outcome.
func unavailable(res EvalCaseResult, reason string) EvalCaseResult {
	res.Disposition, res.Priority, res.Queue = rules.ManualTriage, rules.Routine, QueueTriage
	res.Flags = []string{string(rules.FlagRecordUnavailable)}
	res.DraftStatus = "none"
	res.Unavailable = reason
	return score(res)
}

// raiseUnavailable keeps a committed escalation above the unavailable outcome.
func raiseUnavailable(res EvalCaseResult, escalation *Outcome) EvalCaseResult {
	if escalation == nil {
		return res
	}
	out := raise(*escalation, Outcome{Disposition: res.Disposition, Priority: res.Priority, Queue: res.Queue,
		Flags: rules.Flags{rules.FlagRecordUnavailable}})
	res.Disposition, res.Priority, res.Queue, res.Flags = out.Disposition, out.Priority, out.Queue, out.Flags.Strings()
	return score(res)
}

func score(res EvalCaseResult) EvalCaseResult {
	res.PriorityAgrees = res.Priority == res.Label.Priority
	res.RouteAgrees = res.Queue == res.Label.Route
	res.DispositionAgrees = nil
	if res.Label.Disposition != rules.DispositionNone {
		ok := res.Disposition == res.Label.Disposition
		res.DispositionAgrees = &ok
	}
	return res
}

// summarise computes the report's metrics from its Results.
func (r *EvalReport) summarise(target float64) {
	r.Cases = len(r.Results)
	r.Confusion = EvalConfusion{Labels: make([]string, len(EvalPriorities)), Counts: make([][]int, len(EvalPriorities))}
	for i, p := range EvalPriorities {
		r.Confusion.Labels[i] = p.String()
		r.Confusion.Counts[i] = make([]int, len(EvalPriorities))
	}
	r.Calibration = make([]EvalBin, len(EvalCalibrationBins))
	for i, lo := range EvalCalibrationBins {
		hi := 1.0
		if i+1 < len(EvalCalibrationBins) {
			hi = EvalCalibrationBins[i+1]
		}
		r.Calibration[i] = EvalBin{Low: lo, High: hi}
	}
	var pa, ra, da, dt int
	var grounded []EvalCaseResult
	for _, c := range r.Results {
		r.Dispositions[c.Disposition.String()]++
		if c.PriorityAgrees {
			pa++
		}
		if c.RouteAgrees {
			ra++
		}
		if c.DispositionAgrees != nil {
			dt++
			if *c.DispositionAgrees {
				da++
			}
		}
		li, pi := slices.Index(EvalPriorities, c.Label.Priority), slices.Index(EvalPriorities, c.Priority)
		if li >= 0 && pi >= 0 {
			r.Confusion.Counts[li][pi]++
		}
		switch c.DraftStatus {
		case "invalid":
			r.Grounding.Invalid++
		case "unavailable":
			r.Grounding.Unavailable++
		case "excluded":
			r.Grounding.Excluded++
		case "ok":
			r.Grounding.Drafts++
			if !c.Grounded {
				r.Grounding.Ungrounded++
			}
			b := &r.Calibration[binOf(c.Confidence)]
			b.Count++
			b.MeanConfidence += c.Confidence
			if c.DraftCorrect {
				b.Correct++
			}
			if c.Grounded {
				grounded = append(grounded, c)
			}
		}
	}
	r.Agreement = EvalAgreement{Priority: ratio(pa, r.Cases), Route: ratio(ra, r.Cases), Disposition: ratio(da, dt)}
	if r.Grounding.Drafts > 0 {
		r.Grounding.RejectionRate = float64(r.Grounding.Ungrounded) / float64(r.Grounding.Drafts)
	}
	for i := range r.Calibration {
		b := &r.Calibration[i]
		if b.Count > 0 {
			b.Accuracy = float64(b.Correct) / float64(b.Count)
			b.MeanConfidence /= float64(b.Count)
		}
	}

	r.AtThreshold = operatingPoint(grounded, r.Threshold, r.Cases)
	r.Target = EvalTarget{Precision: target}
	ts := make([]float64, 0, len(grounded))
	for _, c := range grounded {
		ts = append(ts, c.Confidence)
	}
	sort.Float64s(ts)
	ts = slices.Compact(ts)
	for _, t := range ts {
		op := operatingPoint(grounded, t, r.Cases)
		if op.Covered > 0 && op.Precision >= target {
			r.Target.Reached, r.Target.Point = true, &op
			break
		}
	}
}

// binOf returns the calibration bin of an effective confidence.
func binOf(c float64) int {
	if math.IsNaN(c) {
		return 0
	}
	for i := len(EvalCalibrationBins) - 1; i > 0; i-- {
		if c >= EvalCalibrationBins[i] {
			return i
		}
	}
	return 0
}

// operatingPoint counts grounded drafts with effective confidence ≥ t.
func operatingPoint(grounded []EvalCaseResult, t float64, cases int) EvalOperatingPoint {
	op := EvalOperatingPoint{Threshold: t}
	for _, c := range grounded {
		if c.Confidence >= t {
			op.Covered++
			if c.DraftCorrect {
				op.Correct++
			}
		}
	}
	if op.Covered > 0 {
		op.Precision = float64(op.Correct) / float64(op.Covered)
	}
	if cases > 0 {
		op.Coverage = float64(op.Covered) / float64(cases)
	}
	return op
}

// overlaySource is one case's resources (top) laid over the shared records
// (base): a resource in top hides the base resource with the same type and id.
// Both stores are in memory; base is never written after loading.
type overlaySource struct{ top, base *fhir.Store }

var _ fhir.Source = overlaySource{}

func (o overlaySource) inTop(ctx context.Context, typ, id string) bool {
	_, err := o.top.Read(ctx, typ, id)
	return err == nil
}

// Read implements fhir.Source.
func (o overlaySource) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	if o.inTop(ctx, typ, id) {
		return o.top.Read(ctx, typ, id)
	}
	return o.base.Read(ctx, typ, id)
}

// VRead implements fhir.Source.
func (o overlaySource) VRead(ctx context.Context, typ, id, version string) (*fhir.Resource, error) {
	if o.inTop(ctx, typ, id) {
		return o.top.VRead(ctx, typ, id, version)
	}
	return o.base.VRead(ctx, typ, id, version)
}

// Search implements fhir.Source: top's matches, then base's not hidden by top.
func (o overlaySource) Search(ctx context.Context, typ string, params url.Values) ([]*fhir.Resource, error) {
	out, err := o.top.Search(ctx, typ, params)
	if err != nil {
		return nil, err
	}
	more, err := o.base.Search(ctx, typ, params)
	if err != nil {
		return nil, err
	}
	for _, r := range more {
		if !o.inTop(ctx, r.Type, r.ID) {
			out = append(out, r)
		}
	}
	return out, nil
}
