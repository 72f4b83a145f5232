package audit_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

func TestAnomalyDetectors(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 10, 12, 30, 0, 0, time.UTC) // scans the window [11:00, 12:00)
	win := time.Date(2026, 11, 10, 11, 0, 0, 0, time.UTC)
	read := func(actor string, at time.Time, patient string, detail map[string]any) audit.Event {
		return audit.Event{TenantID: "t1", OccurredAt: at, Actor: actor, ActorRole: "nurse", Action: audit.ActionRead,
			Verb: "review.read", Outcome: audit.OutcomeSuccess, PatientRef: patient, Detail: detail}
	}
	many := func(n int, from time.Time, step time.Duration, f func(i int, at time.Time) audit.Event) []audit.Event {
		var out []audit.Event
		for i := 0; i < n; i++ {
			out = append(out, f(i, from.Add(time.Duration(i)*step)))
		}
		return out
	}
	tests := []struct {
		name    string
		cfg     audit.DetectorConfig
		traffic func() []audit.Event
		want    []string // detector/actor
	}{
		{"volume spike", audit.DetectorConfig{Baseline: 4 * time.Hour}, func() []audit.Event {
			var evs []audit.Event
			// "steady" reads 60 an hour, always; "spiky" read 2 in four hours, then 60 in one.
			evs = append(evs, many(240, win.Add(-4*time.Hour), time.Minute, func(i int, at time.Time) audit.Event {
				if i%120 == 0 {
					evs = append(evs, read("spiky", at, "Patient/1", nil))
				}
				return read("steady", at, "Patient/1", nil)
			})...)
			sort.SliceStable(evs, func(i, j int) bool { return evs[i].OccurredAt.Before(evs[j].OccurredAt) })
			evs = append(evs, many(60, win, time.Minute, func(i int, at time.Time) audit.Event { return read("steady", at, "Patient/1", nil) })...)
			evs = append(evs, many(60, win.Add(30*time.Second), time.Minute, func(i int, at time.Time) audit.Event { return read("spiky", at, "Patient/1", nil) })...)
			sort.SliceStable(evs, func(i, j int) bool { return evs[i].OccurredAt.Before(evs[j].OccurredAt) })
			return evs
		}, []string{"volume_spike/spiky"}},
		{"no care relationship", audit.DetectorConfig{}, func() []audit.Event {
			return []audit.Event{
				read("snoop", win.Add(time.Minute), "Patient/9", map[string]any{audit.DetailCareTeam: false}),
				read("carer", win.Add(2*time.Minute), "Patient/9", map[string]any{audit.DetailCareTeam: true}),
			}
		}, []string{"no_care_relationship/snoop"}},
		{"off-hours bulk reads", audit.DetectorConfig{TimeZone: "America/Los_Angeles"}, func() []audit.Event {
			// 11:00 UTC is 03:00 in Los Angeles.
			return many(25, win, time.Minute, func(i int, at time.Time) audit.Event {
				return read("nightowl", at, fmt.Sprintf("Patient/%d", i), nil)
			})
		}, []string{"offhours_bulk_reads/nightowl"}},
		{"working-hours reads", audit.DetectorConfig{TimeZone: "Europe/Berlin"}, func() []audit.Event {
			// 11:00 UTC is noon in Berlin.
			return many(25, win, time.Minute, func(i int, at time.Time) audit.Event {
				return read("dayshift", at, fmt.Sprintf("Patient/%d", i), nil)
			})
		}, nil},
		{"repeated authorisation failures", audit.DetectorConfig{}, func() []audit.Event {
			return many(6, win, time.Minute, func(i int, at time.Time) audit.Event {
				ev := read("guesser", at, "", map[string]any{"reason": "insufficient_scope"})
				ev.Verb, ev.Outcome = "auth.deny", audit.OutcomeDenied
				return ev
			})
		}, []string{"auth_failures/guesser"}},
		{"break the glass", audit.DetectorConfig{}, func() []audit.Event {
			return []audit.Event{read("er-doc", win.Add(time.Minute), "Patient/3", map[string]any{audit.DetailVia: "break_glass", audit.DetailCareTeam: false})}
		}, []string{"break_glass/er-doc"}},
		{"large export", audit.DetectorConfig{}, func() []audit.Event {
			ev := read("exporter", win.Add(time.Minute), "", map[string]any{audit.DetailCount: 5000, "format": "ndjson"})
			ev.Verb = "audit.export"
			small := read("exporter2", win.Add(2*time.Minute), "", map[string]any{audit.DetailCount: 20})
			small.Verb = "audit.export"
			return []audit.Event{ev, small}
		}, []string{"large_export/exporter"}},
		{"thresholds from configuration", audit.DetectorConfig{Thresholds: map[string]float64{"export_records": 10}}, func() []audit.Event {
			ev := read("exporter2", win.Add(2*time.Minute), "", map[string]any{audit.DetailCount: 20})
			ev.Verb = "audit.export"
			return []audit.Event{ev}
		}, []string{"large_export/exporter2"}},
		{"custom rule", audit.DetectorConfig{Rules: []audit.DetectorRule{{ID: "many_patients", When: `patients > T.max_patients`, Value: "patients"}},
			Thresholds: map[string]float64{"max_patients": 3}}, func() []audit.Event {
			return many(5, win, time.Minute, func(i int, at time.Time) audit.Event {
				return read("browser", at, fmt.Sprintf("Patient/%d", i), nil)
			})
		}, []string{"many_patients/browser"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "t1")
			err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
				_, err := audit.AppendMany(b.ctx, tx, tt.traffic())
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			alerts, err := audit.ScanAnomalies(b.ctx, b.db.App, tt.cfg, now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range alerts {
				got = append(got, a.Detector+"/"+a.Actor)
				if a.ID == "" || a.TenantID != "t1" || !a.WindowStart.Equal(win) {
					t.Fatalf("alert = %+v", a)
				}
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("alerts = %v, want %v", got, tt.want)
			}
			// Idempotent per window; stored, listed and audited.
			again, err := audit.ScanAnomalies(b.ctx, b.db.App, tt.cfg, now.Add(10*time.Minute))
			if err != nil || len(again) != 0 {
				t.Fatalf("rescan raised %v, %v", again, err)
			}
			err = b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
				listed, err := audit.ListAlerts(b.ctx, tx, now.Add(-time.Hour), 0)
				if err != nil {
					return err
				}
				p, err := audit.Search(b.ctx, tx, audit.Query{Verb: "audit.alert"})
				if err != nil {
					return err
				}
				if len(listed) != len(tt.want) || len(p.Records) != len(tt.want) {
					return fmt.Errorf("listed %d alerts, %d audit records; want %d", len(listed), len(p.Records), len(tt.want))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDetectorsBadRule(t *testing.T) {
	t.Parallel()
	_, err := audit.NewDetectors(audit.DetectorConfig{Rules: []audit.DetectorRule{{ID: "broken", When: `count >`}}})
	if err == nil || !strings.Contains(err.Error(), "detector broken") {
		t.Fatalf("err = %v", err)
	}
	_, err = audit.NewDetectors(audit.DetectorConfig{Rules: []audit.DetectorRule{{ID: "not_bool", When: `count + 1`}}})
	if err == nil {
		t.Fatal("non-boolean rule compiled")
	}
}

func TestDisclosures(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	at := t0
	evs := []audit.Event{
		{Actor: "carer", Verb: "review.read", Detail: map[string]any{audit.DetailCareTeam: true}},
		{Actor: "billing-1", ActorRole: "billing", Verb: "review.read", Purpose: "HPAYMT", Detail: map[string]any{audit.DetailCareTeam: false}},
		{Actor: "er-doc", Verb: "review.read", Detail: map[string]any{audit.DetailVia: "break_glass"}},
		{Actor: "hie-gateway", Verb: "disclose.send", Action: audit.ActionExecute, Detail: map[string]any{audit.DetailRecipient: "State registry"}},
		{Actor: "snoop", Verb: "review.read", Outcome: audit.OutcomeDenied, Detail: map[string]any{audit.DetailCareTeam: false}},
		{Actor: "billing-1", Verb: "review.read", PatientRef: "Patient/other", Detail: map[string]any{audit.DetailCareTeam: false}},
	}
	for i := range evs {
		e := &evs[i]
		e.TenantID, e.OccurredAt = "t1", at.Add(time.Duration(i)*time.Minute)
		if e.Action == "" {
			e.Action = audit.ActionRead
		}
		if e.Outcome == "" {
			e.Outcome = audit.OutcomeSuccess
		}
		if e.PatientRef == "" {
			e.PatientRef = "Patient/7"
		}
	}
	var ds []audit.Disclosure
	err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		if _, err := audit.AppendMany(b.ctx, tx, evs); err != nil {
			return err
		}
		var err error
		ds, err = audit.Disclosures(b.ctx, tx, "Patient/7", at.Add(-time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%s:%s:%v", d.Actor, d.Recipient, d.BreakGlass))
	}
	want := "billing-1::false,er-doc::true,hie-gateway:State registry:false"
	if strings.Join(got, ",") != want {
		t.Fatalf("disclosures = %v, want %s", got, want)
	}
}
