package audit_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

func TestAppendAndVerify(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1", "t2")
	a1 := b.appendN(t, "t1", 5)
	b.appendN(t, "t2", 3)
	for i, a := range a1 {
		if a.Seq != int64(i+1) || len(a.Hash) != 32 || a.ID == "" {
			t.Fatalf("appended %d = %+v", i, a)
		}
	}
	rep, err := audit.Verify(b.ctx, b.db.Owner, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify as owner: %v", err)
	}
	if !rep.OK || rep.String() != "OK" || tenantReport(t, rep, "t1").Checked != 5 || tenantReport(t, rep, "t2").Checked != 3 {
		t.Fatalf("report = %+v", rep)
	}
	rep, err = audit.Verify(b.ctx, b.db.App.Pool(), audit.VerifyOptions{TenantID: "t2"})
	if err != nil || !rep.OK || rep.Tenants[0].Checked != 3 || rep.Tenants[0].Unanchored != 3 {
		t.Fatalf("verify as app: %+v, %v", rep, err)
	}
}

func TestAppendValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	tests := []struct {
		name string
		mut  func(*audit.Event)
	}{
		{"no actor", func(e *audit.Event) { e.Actor = "" }},
		{"bad action", func(e *audit.Event) { e.Action = "X" }},
		{"bad outcome", func(e *audit.Event) { e.Outcome = "ok" }},
		{"no time", func(e *audit.Event) { e.OccurredAt = time.Time{} }},
		{"bad decision id", func(e *audit.Event) { e.DecisionID = "not-a-uuid" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sampleEvent("t1", 1)
			tt.mut(&ev)
			err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
				_, err := audit.Append(b.ctx, tx, ev)
				return err
			})
			if !errors.Is(err, audit.ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

// Concurrent transactions appending for one tenant serialise on its head: no seq is lost or reused.
func TestAppendConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				errs <- b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
					_, err := audit.Append(b.ctx, tx, sampleEvent("t1", g*10+i))
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(b.ctx, b.db.App.Pool(), audit.VerifyOptions{TenantID: "t1"})
	if err != nil || tenantReport(t, rep, "t1").Checked != 80 {
		t.Fatalf("%v %+v", err, rep)
	}
}
