package triage

import (
	"fmt"

	"github.com/vigil-health/vigil/rules"
)

// Default queue names used when a rule or draft names none.
const (
	QueueOnCall    = "oncall"
	QueuePhysician = "physician"
	QueueTriage    = "triage"
)

// Outcome is what a decision says: routing class, urgency, constraints and why.
type Outcome struct {
	Disposition rules.Disposition `json:"disposition"`
	Priority    rules.Priority    `json:"priority"`
	Flags       rules.Flags       `json:"flags"`
	Queue       string            `json:"queue"`
	Reasons     []string          `json:"reasons"`
}

// DraftStatus says how the drafting step went.
type DraftStatus int

// Drafting outcomes.
const (
	DraftOK          DraftStatus = iota // a draft was produced and parsed
	DraftUnavailable                    // the model was down, slow or rate-limited past retries
	DraftInvalid                        // the model answered something that is not a valid draft
	DraftExcluded                       // the trigger's sensitivity labels keep it from the model
)

// DecideInput is everything the decision function looks at. It is pure data:
// the same input always gives the same Outcome.
type DecideInput struct {
	// Floor is the rules' outcome; nothing below it is ever returned.
	Floor rules.Outcome
	// Previous is the decision's latest revision, if any: a revision never lowers it.
	Previous *Outcome
	// DraftStatus, DraftReason: whether the drafter produced a usable draft.
	DraftStatus DraftStatus
	DraftReason string
	// DraftPriority and DraftRoute are the (possibly baseline) draft's proposals.
	DraftPriority rules.Priority
	DraftRoute    string
	Baseline      bool
	// Grounded is the verifier's verdict on the draft.
	Grounded bool
	// Confidence is the effective confidence; Threshold the one for DraftRoute.
	Confidence float64
	Threshold  float64
}

// Decide computes the disposition, priority, flags and queue. It only ever
// escalates: the result is at least as severe as Floor and Previous in
// disposition and priority, and carries all their flags.
func Decide(in DecideInput) Outcome {
	var out Outcome
	var candidate rules.Disposition
	var flags rules.Flags
	var reasons []string

	switch {
	case in.DraftStatus == DraftUnavailable:
		candidate = rules.ManualTriage
		flags = flags.Union(rules.FlagLLMUnavailable)
		reasons = append(reasons, "LLM unavailable: "+orDefault(in.DraftReason, "no answer"))
	case in.DraftStatus == DraftInvalid:
		candidate = rules.ManualTriage
		flags = flags.Union(rules.FlagLLMUnavailable)
		reasons = append(reasons, "LLM output invalid: "+orDefault(in.DraftReason, "unparseable"))
	case in.DraftStatus == DraftExcluded:
		candidate = rules.ManualTriage
		reasons = append(reasons, "not sent to the model: "+orDefault(in.DraftReason, "sensitivity label excluded by the tenant"))
	case !in.Grounded:
		candidate = rules.ManualTriage
		flags = flags.Union(rules.FlagUngrounded)
		reasons = append(reasons, "draft not grounded in the record")
	case in.Confidence < in.Threshold && in.Baseline && in.Floor.Disposition >= rules.Held:
		// The rules decided; the baseline's fixed confidence says nothing about this item.
		candidate = rules.ManualTriage
	case in.Confidence < in.Threshold:
		candidate = rules.ManualTriage
		flags = flags.Union(rules.FlagLowConfidence)
		reasons = append(reasons, fmt.Sprintf("confidence %.2f below threshold %.2f", in.Confidence, in.Threshold))
	default:
		candidate = rules.Suggested
		reasons = append(reasons, fmt.Sprintf("grounded draft, confidence %.2f ≥ %.2f", in.Confidence, in.Threshold))
	}

	out.Disposition = max(candidate, in.Floor.Disposition)
	out.Flags = flags.Union(in.Floor.Flags...)
	out.Reasons = append(append([]string(nil), in.Floor.Reasons...), reasons...)

	// Priority: the draft may raise it (honoured, flagged ai_raised); it can never lower a rule's.
	draftPriority := in.DraftPriority
	if draftPriority == rules.PriorityNone {
		draftPriority = rules.Routine
	}
	out.Priority = max(draftPriority, in.Floor.Priority)
	if in.Floor.Priority != rules.PriorityNone && draftPriority < in.Floor.Priority && in.DraftStatus == DraftOK && !in.Baseline {
		out.Flags = out.Flags.Union(rules.FlagAIOverridden)
		out.Reasons = append(out.Reasons, fmt.Sprintf("draft priority %s overridden by rule priority %s", draftPriority, in.Floor.Priority))
	}
	if draftPriority > in.Floor.Priority && draftPriority > rules.Routine {
		out.Flags = out.Flags.Union(rules.FlagAIRaised)
		out.Reasons = append(out.Reasons, fmt.Sprintf("draft raised priority to %s", draftPriority))
	}

	// Queue: the most severe source decides where the item goes.
	switch {
	case out.Disposition == in.Floor.Disposition && in.Floor.Queue != "":
		out.Queue = in.Floor.Queue
	case out.Disposition == rules.Escalated:
		out.Queue = QueueOnCall
	case out.Disposition == rules.Held:
		out.Queue = QueuePhysician
	case out.Disposition == rules.ManualTriage:
		out.Queue = QueueTriage
	default:
		out.Queue = orDefault(in.DraftRoute, QueueTriage)
	}

	if p := in.Previous; p != nil {
		out = raise(*p, out)
	}
	return out
}

// raise returns next, made at least as severe as prev: a revision never lowers what an earlier one set.
func raise(prev, next Outcome) Outcome {
	if prev.Disposition > next.Disposition {
		next.Disposition = prev.Disposition
		next.Queue = prev.Queue
		next.Reasons = append(next.Reasons, "kept earlier revision's disposition "+prev.Disposition.String())
	}
	if prev.Priority > next.Priority {
		next.Priority = prev.Priority
	}
	next.Flags = next.Flags.Union(prev.Flags...)
	return next
}

// EscalationOutcome is the outcome committed before context or the LLM, from the pre-rules alone.
func EscalationOutcome(floor rules.Outcome) Outcome {
	priority := floor.Priority
	if priority == rules.PriorityNone {
		priority = rules.Stat
	}
	return Outcome{
		Disposition: floor.Disposition,
		Priority:    priority,
		Flags:       floor.Flags.Union(),
		Queue:       orDefault(floor.Queue, QueueOnCall),
		Reasons:     append([]string(nil), floor.Reasons...),
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
