package ground_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/internal/fixtures"
)

var now = time.Date(2021, 1, 15, 12, 0, 0, 0, time.UTC)

// corpusPatient is one fixture patient with the synthetic portal message
// that triggers its snapshot.
type corpusPatient struct {
	Key       string
	PatientID string
	Message   string
	// MessageClaim paraphrases the message faithfully.
	MessageClaim string
}

func corpusPatients() []corpusPatient {
	return []corpusPatient{
		{"alfreda", "6d23a95e-7e18-4201-90ec-9501fa89fbd2",
			"I have been feeling dizzy for 3 days. Can I get a refill of my hydrochlorothiazide?",
			"Patient reports feeling dizzy for 3 days and asks for a hydrochlorothiazide refill."},
		{"cameron", "c4cbfddf-6f87-4acd-a34b-670178c3e535",
			"My home blood pressure readings have been high this week, around 150/95. Should I come in?",
			"Patient reports home blood pressure readings around 150/95 mmHg this week."},
		{"marcos", "963dabe4-84e7-4751-b432-e34bdbdbde05",
			"I used my epinephrine auto-injector yesterday after a bee sting and I need a new one.",
			"Patient used the epinephrine auto-injector after a bee sting and needs a replacement."},
		{"matt", "beaf00da-c197-4e72-8b27-7ee1131348f1",
			"My sinus congestion is back again for 10 days. I would like to schedule an appointment.",
			"Patient reports sinus congestion for 10 days and wants an appointment."},
	}
}

// corpusSnapshots builds one snapshot per corpus patient, triggered by its
// message, once per test binary.
var corpusSnapshots = sync.OnceValues(func() (map[string]*fhir.Snapshot, error) {
	st := fhir.NewStore()
	st.SetClock(func() time.Time { return now })
	if _, err := st.LoadFS(fixtures.Synthea(), "."); err != nil {
		return nil, err
	}
	out := map[string]*fhir.Snapshot{}
	ctx := context.Background()
	for _, p := range corpusPatients() {
		text, _ := json.Marshal(p.Message)
		raw := fmt.Sprintf(`{"resourceType":"Communication","id":"corpus-msg-%s","status":"completed","subject":{"reference":"Patient/%s"},"sender":{"reference":"Patient/%s"},"sent":"2021-01-14T09:30:00Z","payload":[{"contentString":%s}]}`,
			p.Key, p.PatientID, p.PatientID, text)
		msg, err := st.Put([]byte(raw))
		if err != nil {
			return nil, err
		}
		trig, pat, err := fhir.ReadTrigger(ctx, st, msg.Ref())
		if err != nil {
			return nil, err
		}
		snap, err := fhir.BuildSnapshot(ctx, st, trig, pat, fhir.ContextOptions{Now: now})
		if err != nil {
			return nil, err
		}
		out[p.Key] = snap
	}
	return out, nil
})

func snapshots(t testing.TB) map[string]*fhir.Snapshot {
	t.Helper()
	s, err := corpusSnapshots()
	if err != nil {
		t.Fatalf("build corpus snapshots: %v", err)
	}
	return s
}

// obsFact is one Observation value picked for a corpus template.
type obsFact struct {
	Ref        string
	Value      json.Number
	Unit       string
	Date       string
	Components map[string]json.Number
}

type lenientObs struct {
	Code struct {
		Text string `json:"text"`
	} `json:"code"`
	EffectiveDateTime string `json:"effectiveDateTime"`
	ValueQuantity     *struct {
		Value json.Number `json:"value"`
		Unit  string      `json:"unit"`
	} `json:"valueQuantity"`
	Component []struct {
		Code struct {
			Text string `json:"text"`
		} `json:"code"`
		ValueQuantity *struct {
			Value json.Number `json:"value"`
		} `json:"valueQuantity"`
	} `json:"component"`
}

// latestObs returns the newest Observation whose code text starts with name.
func latestObs(snap *fhir.Snapshot, name string) (obsFact, bool) {
	var best obsFact
	found := false
	for _, r := range snap.Context {
		if r.Type != "Observation" {
			continue
		}
		var o lenientObs
		if json.Unmarshal(r.Raw, &o) != nil || !strings.HasPrefix(o.Code.Text, name) {
			continue
		}
		f := obsFact{Ref: r.Ref().String(), Date: o.EffectiveDateTime[:10], Components: map[string]json.Number{}}
		if o.ValueQuantity != nil {
			f.Value, f.Unit = o.ValueQuantity.Value, o.ValueQuantity.Unit
		}
		for _, c := range o.Component {
			if c.ValueQuantity != nil {
				f.Components[c.Code.Text] = c.ValueQuantity.Value
			}
		}
		if !found || f.Date > best.Date {
			best, found = f, true
		}
	}
	return best, found
}

type labelled struct {
	Ref, Text, Date string
}

// firstOf returns the first resource of typ in the context, with its label
// (code or medication text) and date.
func firstOf(snap *fhir.Snapshot, typ string, skip ...string) (labelled, bool) {
	for _, r := range snap.Context {
		if r.Type != typ {
			continue
		}
		var f struct {
			Code *struct {
				Text string `json:"text"`
			} `json:"code"`
			Med *struct {
				Text string `json:"text"`
			} `json:"medicationCodeableConcept"`
			Onset      string `json:"onsetDateTime"`
			AuthoredOn string `json:"authoredOn"`
		}
		if json.Unmarshal(r.Raw, &f) != nil {
			continue
		}
		l := labelled{Ref: r.Ref().String()}
		switch {
		case f.Med != nil:
			l.Text, l.Date = f.Med.Text, f.AuthoredOn
		case f.Code != nil:
			l.Text, l.Date = f.Code.Text, f.Onset
		}
		if l.Text == "" || slices.ContainsFunc(skip, func(s string) bool { return strings.Contains(l.Text, s) }) {
			continue
		}
		if len(l.Date) >= 10 {
			l.Date = l.Date[:10]
		}
		return l, true
	}
	return labelled{}, false
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func timeParse(d string) (time.Time, error) { return time.Parse("2006-01-02", d) }
