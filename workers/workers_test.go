package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-health/vigil/store"
)

func TestJobResult(t *testing.T) {
	t.Parallel()
	job := &rivertype.JobRow{ID: 1, Attempt: 1}
	logger := slog.New(slog.DiscardHandler)
	transient := errors.New("fhir: server unavailable")
	cases := []struct {
		name       string
		err        error
		wantCancel bool
		wantNil    bool
	}{
		{"success", nil, false, true},
		{"intake of another tenant or deleted: cancel, retrying cannot help", fmt.Errorf("triage: intake event x: %w", store.ErrNotFound), true, false},
		{"transient: retried", transient, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := jobResult(context.Background(), logger, "triage", job, tc.err)
			if tc.wantNil {
				if got != nil {
					t.Fatalf("got %v", got)
				}
				return
			}
			var cancel *river.JobCancelError
			if errors.As(got, &cancel) != tc.wantCancel {
				t.Fatalf("cancel=%v for %v", !tc.wantCancel, got)
			}
			if !errors.Is(got, tc.err) {
				t.Fatalf("the cause is lost: %v", got)
			}
		})
	}
}

func TestArgsKindsAreStable(t *testing.T) {
	t.Parallel()
	// Kinds are stored with every job: renaming one strands queued jobs.
	want := map[string]river.JobArgs{
		"triage": TriageArgs{}, "triage_draft": DraftArgs{}, "deliver_escalation": DeliverArgs{},
		"reescalate_overdue": ReescalateArgs{}, "audit_checkpoint": CheckpointArgs{},
		"audit_partitions": PartitionArgs{}, "audit_anomaly_scan": AnomalyArgs{},
	}
	for kind, args := range want {
		if args.Kind() != kind {
			t.Errorf("%T.Kind() = %q, want %q", args, args.Kind(), kind)
		}
	}
	if o := (DraftArgs{}).InsertOpts(); o.Queue != QueueDraft || !o.UniqueOpts.ByArgs {
		t.Errorf("draft jobs must be unique per intake event on their own queue: %+v", o)
	}
	if (TriageArgs{}).InsertOpts().Queue == QueueDraft {
		t.Error("triage and draft jobs share a queue: a hanging model would hold up escalations")
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	if c.TriageWorkers <= 0 || c.DraftWorkers <= 0 || c.FetchPollInterval <= 0 || c.FetchCooldown <= 0 || c.JobTimeout <= 0 {
		t.Fatalf("defaults %+v", c)
	}
	if _, err := New(Deps{}, Config{}); err == nil {
		t.Fatal("New without a database")
	}
}
