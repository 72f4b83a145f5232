package triage

import (
	"fmt"
	"testing"

	"github.com/vigil-health/vigil/rules"
)

// TestDecideOnlyEscalates runs the real decision function over every
// combination of rule outcome × draft × grounding × confidence × previous
// revision and checks the invariant: the result is never less severe than
// any fired rule or earlier revision, in disposition, priority or flags.
func TestDecideOnlyEscalates(t *testing.T) {
	t.Parallel()
	dispositions := []rules.Disposition{rules.DispositionNone, rules.Suggested, rules.ManualTriage, rules.Held, rules.Escalated}
	priorities := []rules.Priority{rules.PriorityNone, rules.Routine, rules.Urgent, rules.ASAP, rules.Stat}
	flagSets := []rules.Flags{nil, {rules.FlagPhysicianHold}, {rules.FlagUnknownUnit}, {rules.FlagPhysicianHold, rules.FlagUnknownUnit}}
	statuses := []DraftStatus{DraftOK, DraftUnavailable, DraftInvalid, DraftExcluded}
	previous := []*Outcome{nil,
		{Disposition: rules.Escalated, Priority: rules.Stat, Flags: rules.Flags{rules.FlagPhysicianHold}, Queue: QueueOnCall},
		{Disposition: rules.Held, Priority: rules.Urgent, Flags: rules.Flags{rules.FlagPhysicianHold}, Queue: QueuePhysician},
		{Disposition: rules.ManualTriage, Priority: rules.Routine, Flags: rules.Flags{rules.FlagLLMUnavailable}, Queue: QueueTriage},
	}
	n := 0
	for _, fd := range dispositions {
		for _, fp := range priorities {
			for _, ff := range flagSets {
				floor := rules.Outcome{Disposition: fd, Priority: fp, Flags: ff, Queue: map[bool]string{true: "oncall"}[fd == rules.Escalated]}
				for _, st := range statuses {
					for _, dp := range priorities {
						for _, grounded := range []bool{false, true} {
							for _, conf := range []float64{0, 0.5, 0.79, 0.8, 1} {
								for _, baseline := range []bool{false, true} {
									for _, prev := range previous {
										in := DecideInput{Floor: floor, Previous: prev, DraftStatus: st, DraftPriority: dp, DraftRoute: "pharmacy",
											Baseline: baseline, Grounded: grounded, Confidence: conf, Threshold: 0.8}
										out := Decide(in)
										n++
										check(t, in, out)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("checked %d combinations", n)
}

func check(t *testing.T, in DecideInput, out Outcome) {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Fatalf("%s\ninput %+v\noutput %+v", fmt.Sprintf(format, a...), in, out)
	}
	if out.Disposition < in.Floor.Disposition {
		fail("disposition %s below rule floor %s", out.Disposition, in.Floor.Disposition)
	}
	if out.Priority < in.Floor.Priority {
		fail("priority %s below rule floor %s", out.Priority, in.Floor.Priority)
	}
	for _, f := range in.Floor.Flags {
		if !out.Flags.Has(f) {
			fail("rule flag %s dropped", f)
		}
	}
	if p := in.Previous; p != nil {
		if out.Disposition < p.Disposition || out.Priority < p.Priority {
			fail("revision lowered the previous %s/%s", p.Disposition, p.Priority)
		}
		for _, f := range p.Flags {
			if !out.Flags.Has(f) {
				fail("previous flag %s dropped", f)
			}
		}
	}
	if out.Disposition == rules.DispositionNone || out.Priority == rules.PriorityNone || out.Queue == "" {
		fail("incomplete outcome")
	}
	// Only a grounded, confident, valid draft may be SUGGESTED.
	if out.Disposition == rules.Suggested && (in.DraftStatus != DraftOK || !in.Grounded || in.Confidence < in.Threshold) {
		fail("SUGGESTED without a grounded confident draft")
	}
	if in.DraftPriority > in.Floor.Priority && in.DraftPriority > rules.Routine && !out.Flags.Has(rules.FlagAIRaised) {
		fail("draft raised priority without ai_raised")
	}
	if out.Priority < in.DraftPriority {
		fail("draft's higher priority %s not honoured", in.DraftPriority)
	}
}

func TestDecideCases(t *testing.T) {
	t.Parallel()
	critical := rules.Outcome{Disposition: rules.Escalated, Priority: rules.Stat, Queue: QueueOnCall, Reasons: []string{"K 6.9"}}
	held := rules.Outcome{Disposition: rules.Held, Priority: rules.Urgent, Flags: rules.Flags{rules.FlagPhysicianHold}, Queue: QueuePhysician}
	cases := []struct {
		name      string
		in        DecideInput
		disp      rules.Disposition
		prio      rules.Priority
		queue     string
		wantFlags []rules.Flag
	}{
		{"grounded confident draft is suggested on its route",
			DecideInput{DraftPriority: rules.Routine, DraftRoute: "pharmacy", Grounded: true, Confidence: 0.9, Threshold: 0.8},
			rules.Suggested, rules.Routine, "pharmacy", nil},
		{"low confidence goes to triage",
			DecideInput{DraftPriority: rules.Routine, DraftRoute: "pharmacy", Grounded: true, Confidence: 0.5, Threshold: 0.8},
			rules.ManualTriage, rules.Routine, QueueTriage, []rules.Flag{rules.FlagLowConfidence}},
		{"ungrounded goes to triage",
			DecideInput{DraftPriority: rules.Routine, Grounded: false, Confidence: 0.99, Threshold: 0.8},
			rules.ManualTriage, rules.Routine, QueueTriage, []rules.Flag{rules.FlagUngrounded}},
		{"model down goes to triage flagged",
			DecideInput{DraftStatus: DraftUnavailable, DraftPriority: rules.Routine, Grounded: true, Confidence: 0.9, Threshold: 0.8},
			rules.ManualTriage, rules.Routine, QueueTriage, []rules.Flag{rules.FlagLLMUnavailable}},
		{"critical stays escalated whatever the draft says",
			DecideInput{Floor: critical, DraftPriority: rules.Routine, DraftRoute: "pharmacy", Grounded: true, Confidence: 0.99, Threshold: 0.8},
			rules.Escalated, rules.Stat, QueueOnCall, []rules.Flag{rules.FlagAIOverridden}},
		{"draft raising urgency is honoured and flagged",
			DecideInput{Floor: held, DraftPriority: rules.Stat, Grounded: true, Confidence: 0.9, Threshold: 0.8},
			rules.Held, rules.Stat, QueuePhysician, []rules.Flag{rules.FlagAIRaised, rules.FlagPhysicianHold}},
		{"held result keeps physician hold",
			DecideInput{Floor: held, DraftPriority: rules.Routine, Baseline: true, Grounded: true, Confidence: 0.9, Threshold: 0.8},
			rules.Held, rules.Urgent, QueuePhysician, []rules.Flag{rules.FlagPhysicianHold}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Decide(tc.in)
			if out.Disposition != tc.disp || out.Priority != tc.prio || out.Queue != tc.queue {
				t.Fatalf("got %s/%s/%s, want %s/%s/%s", out.Disposition, out.Priority, out.Queue, tc.disp, tc.prio, tc.queue)
			}
			for _, f := range tc.wantFlags {
				if !out.Flags.Has(f) {
					t.Fatalf("flags %v lack %s", out.Flags, f)
				}
			}
			if len(out.Reasons) == 0 {
				t.Fatal("no reasons")
			}
		})
	}
}
