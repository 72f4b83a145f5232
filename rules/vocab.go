package rules

import (
	"fmt"
	"slices"
	"strings"
)

// Disposition is the routing class of a decision. The zero value is
// DispositionNone, which means "no rule set a disposition".
type Disposition int

// Dispositions, least severe first, so that a larger value is more severe.
const (
	DispositionNone Disposition = iota
	Suggested
	ManualTriage
	Held
	Escalated
)

var dispositionNames = [...]string{"", "SUGGESTED", "MANUAL_TRIAGE", "HELD", "ESCALATED"}

// String returns the upper-case name ("ESCALATED"), "" for DispositionNone.
func (d Disposition) String() string {
	if d < 0 || int(d) >= len(dispositionNames) {
		return fmt.Sprintf("Disposition(%d)", int(d))
	}
	return dispositionNames[d]
}

// ParseDisposition accepts the upper-case names used in packs, the API and the database.
func ParseDisposition(s string) (Disposition, error) {
	for i, n := range dispositionNames {
		if n != "" && strings.EqualFold(n, s) {
			return Disposition(i), nil
		}
	}
	return DispositionNone, fmt.Errorf("rules: unknown disposition %q (want ESCALATED, HELD, MANUAL_TRIAGE or SUGGESTED)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (d Disposition) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Disposition) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = DispositionNone
		return nil
	}
	v, err := ParseDisposition(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Priority follows FHIR request-priority. The zero value is PriorityNone.
type Priority int

// Priorities, least urgent first, so that a larger value is more urgent.
const (
	PriorityNone Priority = iota
	Routine
	Urgent
	ASAP
	Stat
)

var priorityNames = [...]string{"", "routine", "urgent", "asap", "stat"}

// String returns the FHIR request-priority code ("stat"), "" for PriorityNone.
func (p Priority) String() string {
	if p < 0 || int(p) >= len(priorityNames) {
		return fmt.Sprintf("Priority(%d)", int(p))
	}
	return priorityNames[p]
}

// ParsePriority accepts stat, asap, urgent and routine in any case.
func ParsePriority(s string) (Priority, error) {
	for i, n := range priorityNames {
		if n != "" && strings.EqualFold(n, s) {
			return Priority(i), nil
		}
	}
	return PriorityNone, fmt.Errorf("rules: unknown priority %q (want stat, asap, urgent or routine)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Priority) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = PriorityNone
		return nil
	}
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Flag is a constraint carried beside the disposition; all flags apply at once.
type Flag string

// Flags known to the engine.
const (
	FlagPhysicianHold     Flag = "physician_hold"
	FlagUngrounded        Flag = "ungrounded"
	FlagLowConfidence     Flag = "low_confidence"
	FlagLLMUnavailable    Flag = "llm_unavailable"
	FlagAIRaised          Flag = "ai_raised"
	FlagAIOverridden      Flag = "ai_overridden"
	FlagUnknownUnit       Flag = "unknown_unit"
	FlagRecordUnavailable Flag = "record_unavailable"
)

// KnownFlags lists every flag, for validating rule packs and API input.
func KnownFlags() []Flag {
	return []Flag{FlagPhysicianHold, FlagUngrounded, FlagLowConfidence, FlagLLMUnavailable,
		FlagAIRaised, FlagAIOverridden, FlagUnknownUnit, FlagRecordUnavailable}
}

// Flags is a set of flags kept sorted and unique, so it encodes the same way every time.
type Flags []Flag

// Union returns the sorted, de-duplicated union of f and more.
func (f Flags) Union(more ...Flag) Flags {
	out := make(Flags, 0, len(f)+len(more))
	out = append(out, f...)
	out = append(out, more...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Has reports whether flag x is set.
func (f Flags) Has(x Flag) bool { return slices.Contains(f, x) }

// Strings returns the flags as plain strings.
func (f Flags) Strings() []string {
	out := make([]string, len(f))
	for i, x := range f {
		out[i] = string(x)
	}
	return out
}
