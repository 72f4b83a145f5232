package triage_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

type storeSources struct{ s *fhir.Store }

func (p storeSources) Source(context.Context, *store.Tenant) (fhir.Source, error) { return p.s, nil }

type noDrafters struct{}

func (noDrafters) Drafter(context.Context, *store.Tenant) (llm.Drafter, error) { return nil, nil }

type nopEnqueuer struct{}

func (nopEnqueuer) EnqueueTriage(context.Context, pgx.Tx, string, string) (int64, error) {
	return 1, nil
}
func (nopEnqueuer) EnqueueDelivery(context.Context, pgx.Tx, string, string) (int64, error) {
	return 1, nil
}
func (nopEnqueuer) EnqueueDraft(context.Context, pgx.Tx, string, string) (int64, error) {
	return 1, nil
}

type replayBundle struct {
	*packBundle
	fhir     *fhir.Store
	sealer   *seal.Sealer
	pipeline *triage.Pipeline
	n        int
}

func setupReplay(t *testing.T) *replayBundle {
	t.Helper()
	b := setupPacks(t, "clinic-a")
	key, err := seal.NewLocalKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	fs := fhir.NewStore()
	if _, err := fs.Put([]byte(`{"resourceType":"Patient","id":"p1","birthDate":"1960-04-01"}`)); err != nil {
		t.Fatal(err)
	}
	p, err := triage.NewPipeline(triage.Deps{DB: b.db.App, Sealer: sealer, Sources: storeSources{fs}, Drafters: noDrafters{},
		Packs: b.packs, Enqueue: nopEnqueuer{}}, triage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &replayBundle{packBundle: b, fhir: fs, sealer: sealer, pipeline: p}
}

// decideSodium posts a sodium result of value mmol/L and runs the pipeline.
func (b *replayBundle) decideSodium(t *testing.T, id string, value string) *triage.Result {
	t.Helper()
	r, err := b.fhir.Put([]byte(`{"resourceType":"Observation","id":"` + id + `","status":"final",
		"code":{"coding":[{"system":"http://loinc.org","code":"2951-2","display":"Sodium"}]},"subject":{"reference":"Patient/p1"},
		"effectiveDateTime":"2026-12-04T08:00:00Z",
		"valueQuantity":{"value":` + value + `,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b.n++
	var in triage.IntakeResult
	err = b.db.App.InTenant(b.ctx, "clinic-a", func(tx pgx.Tx) error {
		in, err = triage.RecordIntake(b.ctx, tx, nopEnqueuer{}, triage.IntakeEvent{TenantID: "clinic-a", Source: "test", EventID: id,
			Kind: "reference", Trigger: r.Ref(), ReceivedAt: time.Now().UTC()}, informaticist)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.pipeline.Process(b.ctx, "clinic-a", in.ID)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (b *replayBundle) replay(t *testing.T, decisionID string, packs triage.PackResolver) (*triage.ReplayResult, error) {
	t.Helper()
	var res *triage.ReplayResult
	err := b.db.App.InTenant(b.ctx, "clinic-a", func(tx pgx.Tx) error {
		var err error
		res, err = triage.Replay(b.ctx, tx, "clinic-a", decisionID, b.sealer, packs)
		return err
	})
	return res, err
}

// A decision made with pack v1 replays to v1's outcome after v2 (a lower
// critical sodium limit) is active, while v2 itself judges the same stored
// snapshot differently, so the replay really used the recorded pack.
func TestReplayUsesRecordedPack(t *testing.T) {
	t.Parallel()
	b := setupReplay(t)
	ctx := b.ctx
	for _, v := range []struct {
		version string
		edits   [][3]string
	}{{"site-1", nil}, {"site-2", [][3]string{sodiumHigh("150")}}} {
		if _, err := b.packs.Publish(ctx, "clinic-a", packFiles(t, v.version, v.edits...), informaticist); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.packs.Activate(ctx, "clinic-a", "site-1", informaticist); err != nil {
		t.Fatal(err)
	}
	first := b.decideSodium(t, "na-1", "155")
	if first.Disposition == rules.Escalated {
		t.Fatalf("sodium 155 under site-1 = %s, want not escalated", first.Disposition)
	}

	if _, err := b.packs.Activate(ctx, "clinic-a", "site-2", informaticist); err != nil {
		t.Fatal(err)
	}
	// The pipeline picks site-2 up on the next job, without a restart.
	second := b.decideSodium(t, "na-2", "155")
	if second.Disposition != rules.Escalated {
		t.Fatalf("sodium 155 under site-2 = %s, want ESCALATED", second.Disposition)
	}

	tests := []struct {
		name      string
		decision  string
		pack      string
		wantRules []string
	}{
		{"decided under site-1", first.DecisionID, "site-1", nil},
		{"decided under site-2", second.DecisionID, "site-2", []string{"critical-sodium-high"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := b.replay(t, tc.decision, b.packs)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Match || len(res.Revisions) == 0 {
				t.Fatalf("replay does not match: %+v", res)
			}
			var sawSnapshot bool
			for _, r := range res.Revisions {
				if r.Pack.Version != tc.pack {
					t.Errorf("revision %d replayed with %s, want %s", r.Revision, r.Pack.Version, tc.pack)
				}
				hasCritical := slices.Contains(r.Replayed.Rules, "critical-sodium-high")
				if hasCritical != (tc.wantRules != nil) {
					t.Errorf("revision %d replayed rules %v", r.Revision, r.Replayed.Rules)
				}
				sawSnapshot = sawSnapshot || r.Input == "snapshot"
			}
			if !sawSnapshot {
				t.Error("no revision replayed from the stored snapshot")
			}
		})
	}

	// The control: evaluating first's stored snapshot with the active pack (site-2) differs.
	var ex *triage.Explanation
	if err := b.db.App.InTenant(ctx, "clinic-a", func(tx pgx.Tx) error {
		var err error
		ex, err = triage.Explain(ctx, tx, "clinic-a", first.DecisionID, b.sealer)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	active, err := b.packs.Active(ctx, "clinic-a")
	if err != nil {
		t.Fatal(err)
	}
	last := ex.Revisions[len(ex.Revisions)-1]
	now := *last.Record.Times.Decided
	got, err := triage.EvaluateRecorded(last.Sealed.Snapshot, active, now, rules.TenantConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got.Rules, "critical-sodium-high") || got.Disposition != "ESCALATED" {
		t.Fatalf("site-2 on the site-1 decision's snapshot = %+v; want ESCALATED by critical-sodium-high (else the replay test proves nothing)", got)
	}

	t.Run("a resolver without the recorded pack refuses", func(t *testing.T) {
		_, err := b.replay(t, first.DecisionID, triage.StaticPacks{Pack: active})
		if !errors.Is(err, triage.ErrPackUnknown) {
			t.Fatalf("err = %v, want ErrPackUnknown", err)
		}
	})
	t.Run("a decision made with the default pack replays with it", func(t *testing.T) {
		c := setupReplay(t)
		res := c.decideSodium(t, "na-3", "165")
		if res.Disposition != rules.Escalated {
			t.Fatalf("sodium 165 under the default pack = %s", res.Disposition)
		}
		def, err := rules.DefaultPack()
		if err != nil {
			t.Fatal(err)
		}
		for _, packs := range []triage.PackResolver{c.packs, triage.StaticPacks{Pack: def}} {
			r, err := c.replay(t, res.DecisionID, packs)
			if err != nil || !r.Match {
				t.Fatalf("replay = %+v, %v", r, err)
			}
			// The escalation revision (trigger only) and the decided one (snapshot).
			if len(r.Revisions) != 2 || r.Revisions[0].Input != "trigger" || r.Revisions[1].Input != "snapshot" {
				t.Errorf("revisions %+v", r.Revisions)
			}
		}
	})
	t.Run("unknown decision", func(t *testing.T) {
		if _, err := b.replay(t, "00000000-0000-0000-0000-000000000000", b.packs); !errors.Is(err, triage.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}
