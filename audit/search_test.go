package audit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

const decisionID = "0b0c2a55-6c55-4d43-9f43-9a1c2c0d7e11"

// seedSearch appends 30 varied events for t1 (and a few for t2, which must never show).
func seedSearch(t *testing.T, b *testBundle) {
	t.Helper()
	var evs []audit.Event
	for i := 0; i < 30; i++ {
		ev := sampleEvent("t1", i)
		ev.OccurredAt = t0.Add(time.Duration(i/2) * time.Minute) // pairs share a time: order falls back to seq
		ev.PatientRef = fmt.Sprintf("Patient/%d", i%3)
		ev.Actor = fmt.Sprintf("user-%d", i%4)
		ev.Action = []audit.Action{audit.ActionRead, audit.ActionUpdate, audit.ActionCreate}[i%3]
		ev.Outcome = []string{audit.OutcomeSuccess, audit.OutcomeSuccess, audit.OutcomeDenied}[i%3]
		ev.SourceIP = fmt.Sprintf("10.0.0.%d", i%5)
		if i == 7 {
			ev.DecisionID = decisionID
			ev.Verb = "decision.decide"
		}
		evs = append(evs, ev)
	}
	err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		_, err := audit.AppendMany(b.ctx, tx, evs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.appendN(t, "t2", 3)
}

func (b *testBundle) searchAll(t *testing.T, q audit.Query) []audit.Record {
	t.Helper()
	var out []audit.Record
	for pages := 0; ; pages++ {
		var p audit.Page
		err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
			var err error
			p, err = audit.Search(b.ctx, tx, q)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Records...)
		if p.NextCursor == "" {
			return out
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		q.Cursor = p.NextCursor
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1", "t2")
	seedSearch(t, b)
	tests := []struct {
		name string
		q    audit.Query
		want func(i int) bool // which of the 30 seeded events (by index, seq = i+1) match
	}{
		{"all", audit.Query{}, func(i int) bool { return true }},
		{"patient", audit.Query{PatientRef: "Patient/1"}, func(i int) bool { return i%3 == 1 }},
		{"user", audit.Query{Actor: "user-2"}, func(i int) bool { return i%4 == 2 }},
		{"action", audit.Query{Action: audit.ActionUpdate}, func(i int) bool { return i%3 == 1 }},
		{"outcome", audit.Query{Outcome: audit.OutcomeDenied}, func(i int) bool { return i%3 == 2 }},
		{"ip", audit.Query{SourceIP: "10.0.0.4"}, func(i int) bool { return i%5 == 4 }},
		{"resource", audit.Query{Resource: "Observation/11/_history/1"}, func(i int) bool { return i == 11 }},
		{"verb", audit.Query{Verb: "decision.decide"}, func(i int) bool { return i == 7 }},
		{"decision", audit.Query{DecisionID: decisionID}, func(i int) bool { return i == 7 }},
		{"time range", audit.Query{From: t0.Add(3 * time.Minute), To: t0.Add(6 * time.Minute)}, func(i int) bool { return i/2 >= 3 && i/2 < 6 }},
		{"patient and time", audit.Query{PatientRef: "Patient/0", From: t0.Add(5 * time.Minute)}, func(i int) bool { return i%3 == 0 && i/2 >= 5 }},
		{"patient and user", audit.Query{PatientRef: "Patient/0", Actor: "user-0"}, func(i int) bool { return i%12 == 0 }},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 4, 1000} {
			for _, desc := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/limit=%d/desc=%v", tt.name, limit, desc), func(t *testing.T) {
					q := tt.q
					q.Limit, q.Desc = limit, desc
					got := b.searchAll(t, q)
					var want []int64
					for i := 0; i < 30; i++ {
						if tt.want(i) {
							want = append(want, int64(i+1))
						}
					}
					if desc {
						for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
							want[i], want[j] = want[j], want[i]
						}
					}
					var gotSeq []int64
					for _, r := range got {
						if r.TenantID != "t1" {
							t.Fatalf("record of tenant %s", r.TenantID)
						}
						gotSeq = append(gotSeq, r.Seq)
					}
					if fmt.Sprint(gotSeq) != fmt.Sprint(want) {
						t.Fatalf("seqs = %v, want %v", gotSeq, want)
					}
				})
			}
		}
	}
	t.Run("bad cursor", func(t *testing.T) {
		err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
			_, err := audit.Search(b.ctx, tx, audit.Query{Cursor: "bm9wZQ"})
			return err
		})
		if !errors.Is(err, audit.ErrBadCursor) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("invalid filters", func(t *testing.T) {
		for _, q := range []audit.Query{{Action: "X"}, {DecisionID: "42"}} {
			err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
				_, err := audit.Search(b.ctx, tx, q)
				return err
			})
			if !errors.Is(err, audit.ErrInvalidQuery) {
				t.Fatalf("%+v: err = %v", q, err)
			}
		}
	})
	t.Run("other tenant invisible", func(t *testing.T) {
		// Asking for t2 inside a t1 transaction finds nothing: row-level security.
		err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
			p, err := audit.Search(b.ctx, tx, audit.Query{TenantID: "t2"})
			if err == nil && len(p.Records) != 0 {
				err = fmt.Errorf("saw %d of t2's records", len(p.Records))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// The patient + time-range search uses the patient index on ~100k rows.
func TestSearchPlanUsesIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	// Generated rows (not a valid chain: only the plan matters here), spread over the last 20 days.
	_, err := b.db.Owner.Exec(b.ctx, `
		INSERT INTO audit_events (tenant_id, seq, id, occurred_at, actor, action, verb, outcome, patient_ref, enc_version, prev_hash, hash)
		SELECT 't1', g, gen_random_uuid(), now() - make_interval(secs => (100000 - g) * 17), 'user-' || (g % 200), 'R', 'review.read', 'success',
		       'Patient/' || (g % 5000), 1, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea,
		       '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
		FROM generate_series(1, 100000) g;
		ANALYZE audit_events;`)
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := audit.SearchSQL(audit.Query{TenantID: "t1", PatientRef: "Patient/42",
		From: time.Now().Add(-10 * 24 * time.Hour), To: time.Now()}, 101)
	if err != nil {
		t.Fatal(err)
	}
	var plan []byte
	if err := b.db.Owner.QueryRow(b.ctx, `EXPLAIN (FORMAT JSON) `+sql, args...).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var idx []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if name, ok := n["Index Name"].(string); ok {
			idx = append(idx, name)
		}
		if nt, _ := n["Node Type"].(string); nt == "Seq Scan" {
			idx = append(idx, "SEQ SCAN on "+fmt.Sprint(n["Relation Name"]))
		}
		if subs, ok := n["Plans"].([]any); ok {
			for _, s := range subs {
				walk(s.(map[string]any))
			}
		}
	}
	var doc []map[string]any
	if err := json.Unmarshal(plan, &doc); err != nil {
		t.Fatal(err)
	}
	walk(doc[0]["Plan"].(map[string]any))
	if len(idx) == 0 {
		t.Fatalf("no index in plan: %s", plan)
	}
	for _, n := range idx {
		if !strings.Contains(n, "patient_ref") {
			t.Fatalf("plan uses %v, want the patient index on every partition:\n%s", idx, plan)
		}
	}
}
