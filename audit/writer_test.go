package audit_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vigil-health/vigil/audit"
)

func TestWriter(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1", "t2", "t3")
	w := audit.NewWriter(b.db.App, audit.WriterConfig{MaxBatch: 16})
	const per = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[string]map[int64]bool{}
	errs := make(chan error, 3*per)
	for _, tn := range []string{"t1", "t2", "t3"} {
		seqs[tn] = map[int64]bool{}
		for i := 0; i < per; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := w.Append(b.ctx, sampleEvent(tn, i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seqs[tn][a.Seq] = true
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for tn, s := range seqs {
		for i := int64(1); i <= per; i++ {
			if !s[i] {
				t.Fatalf("%s: seq %d not handed out (%d seqs)", tn, i, len(s))
			}
		}
	}
	// Invalid events fail alone, before batching.
	if _, err := w.Append(b.ctx, audit.Event{TenantID: "t1"}); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Fatalf("invalid event: %v", err)
	}
	// A batch for an unknown tenant fails (foreign key on the head) without hurting the others.
	if _, err := w.Append(b.ctx, sampleEvent("nope", 1)); err == nil {
		t.Fatal("append for an unknown tenant succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(b.ctx, sampleEvent("t1", 1)); !errors.Is(err, audit.ErrWriterClosed) {
		t.Fatalf("after close: %v", err)
	}
	rep, err := audit.Verify(b.ctx, b.db.Owner, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []string{"t1", "t2", "t3"} {
		if got := tenantReport(t, rep, tn).Checked; got != per {
			t.Fatal(fmt.Sprintf("%s checked %d", tn, got))
		}
	}
}
