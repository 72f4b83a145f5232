package llm

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-health/vigil/rules"
)

// Baseline confidence table: the fixed confidence of each baseline route
// decision. A purely administrative request (a refill or scheduling cue and
// no clinical cue: no symptom, dose change, side effect or result question)
// is confident enough to be suggested at the default threshold 0.8 — it still
// waits for a person's approval. Everything else is deliberately low, so it
// goes to manual triage under the default thresholds.
const (
	BaselineConfidenceRefill        = 0.85 // refill/prescription cue, no clinical cue → pharmacy
	BaselineConfidenceScheduling    = 0.85 // scheduling/appointment cue, no clinical cue → front_desk
	BaselineConfidenceMixed         = 0.30 // administrative cue together with a clinical cue → triage
	BaselineConfidenceMessage       = 0.30 // other Communication → triage
	BaselineConfidenceResult        = 0.50 // Observation → physician
	BaselineConfidenceQuestionnaire = 0.30 // QuestionnaireResponse → triage
	BaselineConfidenceOther         = 0.20 // any other trigger → triage
)

// Baseline queue names.
const (
	QueuePharmacy  = "pharmacy"
	QueueFrontDesk = "front_desk"
	QueueTriage    = "triage"
	QueuePhysician = "physician"
)

// Baseline is the deterministic drafter used when no model is configured or
// the model is unavailable. It routes by trigger type and simple cues,
// always drafts priority routine (rules alone raise urgency), cites the
// trigger, makes no other claim, drafts no reply, and takes its confidence
// from the table above. Its drafts have Baseline set. It is safe for
// concurrent use.
type Baseline struct {
	refill     *regexp.Regexp
	scheduling *regexp.Regexp
	clinical   *regexp.Regexp
}

var _ Drafter = (*Baseline)(nil)

// NewBaseline returns the baseline drafter.
func NewBaseline() *Baseline {
	return &Baseline{
		refill:     regexp.MustCompile(`(?i)\b(refill|refills|prescription|prescriptions|rx|renew(al)? (my )?(med|medication|prescription)s?|pharmacy|run(ning)? out of (my )?(med|medication|pill)s?)\b`),
		scheduling: regexp.MustCompile(`(?i)\b(appointment|appt|schedul(e|ing)|reschedul(e|ing)|cancel (my )?(visit|appointment)|book (a|an)? ?(visit|appointment)|availability)\b`),
		clinical:   regexp.MustCompile(`(?i)\b(pain\w*|hurt\w*|ache\w*|fever\w*|dizz\w*|bleed\w*|blood|rash\w*|swell\w*|swollen|wors\w*|vomit\w*|nause\w*|side[- ]?effects?|reaction\w*|breath\w*|cough\w*|infect\w*|faint\w*|numb\w*|allerg\w*|sick\w*|ill|headache\w*|chest|sugar|pressure|dos(e|es|age|ing)|increase\w*|decrease\w*|stop(ped)? taking|symptom\w*|result\w*|worried|worry|tired|off|pregnan\w*|suicid\w*|confus\w*)\b`),
	}
}

// Name implements Drafter.
func (b *Baseline) Name() string { return "baseline" }

// Draft implements Drafter. It errors only for an unusable Request.
func (b *Baseline) Draft(ctx context.Context, req Request) (*Result, error) {
	if err := validateRequest(req); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	trig := req.Snapshot.Trigger
	route, conf, why := QueueTriage, BaselineConfidenceOther, "baseline routing: other trigger type"
	switch trig.Type {
	case "Communication":
		text := strings.Join(communicationText(trig.Raw), "\n")
		switch {
		case (b.refill.MatchString(text) || b.scheduling.MatchString(text)) && b.clinical.MatchString(text):
			route, conf, why = QueueTriage, BaselineConfidenceMixed, "baseline routing: administrative request that also mentions a clinical concern"
		case b.refill.MatchString(text):
			route, conf, why = QueuePharmacy, BaselineConfidenceRefill, "baseline routing: message mentions a refill or prescription"
		case b.scheduling.MatchString(text):
			route, conf, why = QueueFrontDesk, BaselineConfidenceScheduling, "baseline routing: message mentions scheduling"
		default:
			route, conf, why = QueueTriage, BaselineConfidenceMessage, "baseline routing: patient message"
		}
	case "Observation":
		route, conf, why = QueuePhysician, BaselineConfidenceResult, "baseline routing: new result for clinician review"
	case "QuestionnaireResponse":
		route, conf, why = QueueTriage, BaselineConfidenceQuestionnaire, "baseline routing: questionnaire answers"
	}
	if !slices.Contains(req.Queues, route) {
		route = QueueTriage
		if !slices.Contains(req.Queues, route) {
			route = req.Queues[0]
		}
	}
	ref := trig.Ref().String()
	d := Draft{
		Priority:   rules.Routine,
		Route:      route,
		Rationale:  why + " (no language model used).",
		Claims:     []Claim{{Text: "New " + trig.Type + " received for triage.", Evidence: []string{ref}}},
		Confidence: conf,
		Baseline:   true,
	}
	return &Result{Draft: d, Call: CallRecord{Drafter: b.Name()}}, nil
}

func communicationText(raw []byte) []string {
	f := decodeFields(raw)
	var out []string
	for _, p := range f.Payload {
		out = append(out, p.ContentString)
	}
	return out
}
