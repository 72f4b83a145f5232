package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/llm/llmtest"
	"github.com/vigil-health/vigil/migrations"
	"github.com/vigil-health/vigil/workers"
)

// BenchmarkEndToEnd measures decisions per second through the real path:
// HTTP intake → River → FHIR over HTTP → rules → LLM (an instant
// OpenAI-compatible stub through go-openai) → grounding → Postgres. Compare
// with BenchmarkRiverNoop, River's own no-op throughput with the same fetch
// settings, measured in the same run.
func BenchmarkEndToEnd(b *testing.B) {
	srv := llmtest.New(b, llmtest.Faithful("triage"))
	h := newHarness(b, harnessOpts{llmURL: srv.URL, appCfg: nil})
	// Distinct routine messages for the same patient: each is its own trigger.
	refs := make([]fhir.Ref, b.N)
	for i := range refs {
		raw, _ := json.Marshal(map[string]any{
			"resourceType": "Communication", "id": fmt.Sprintf("bench-%d", i), "status": "completed",
			"subject": map[string]string{"reference": "Patient/6d23a95e-7e18-4201-90ec-9501fa89fbd2"},
			"sent":    "2026-12-04T10:00:00Z",
			"payload": []map[string]string{{"contentString": fmt.Sprintf("Question %d about my upcoming visit, nothing urgent.", i)}},
		})
		r, err := h.fhir.Put(raw)
		if err != nil {
			b.Fatal(err)
		}
		refs[i] = r.Ref()
	}
	b.ResetTimer()
	start := time.Now()
	for _, r := range refs {
		h.postRef(r)
	}
	h.waitFor("all decisions", func() bool {
		return h.count(`SELECT count(*) FROM decisions WHERE stage = 'decided'`) >= b.N
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// BenchmarkRiverNoop is the baseline: River inserting and completing no-op
// jobs on the same database server with Vigil's fetch settings.
func BenchmarkRiverNoop(b *testing.B) {
	db := testdb.New(b)
	ctx := context.Background()
	cfg := workers.Config{}.WithDefaults()
	ws := river.NewWorkers()
	river.AddWorker(ws, noopWorker{})
	client, err := river.NewClient(riverpgxv5.New(db.Owner), &river.Config{
		Schema: migrations.RiverSchema, Workers: ws, FetchCooldown: cfg.FetchCooldown, FetchPollInterval: cfg.FetchPollInterval,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.TriageWorkers}},
	})
	if err != nil {
		b.Fatal(err)
	}
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{Kinds: []river.EventKind{river.EventKindJobCompleted}, ChanSize: b.N + 10})
	defer cancel()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer client.Stop(ctx)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := client.Insert(ctx, noopArgs{}, nil); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < b.N; i++ {
		<-events
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkTimeToEscalation measures intake-to-committed-escalation time for
// critical potassium results with the LLM up (instant), down (connection
// refused) and hanging (never answers). Escalations never wait for the model,
// so the three should be within noise of each other; compare ms/escalation.
func BenchmarkTimeToEscalation(b *testing.B) {
	for _, mode := range []string{"llm-up", "llm-down", "llm-hanging"} {
		b.Run(mode, func(b *testing.B) {
			var url string
			switch mode {
			case "llm-up":
				url = llmtest.New(b, llmtest.Faithful("oncall")).URL
			case "llm-down":
				srv := httptest.NewServer(http.NotFoundHandler())
				url = srv.URL + "/v1"
				srv.Close() // connection refused from here on
			case "llm-hanging":
				release := make(chan struct{})
				b.Cleanup(func() { close(release) })
				url = llmtest.New(b, llmtest.Fixed(llmtest.Hang(release))).URL
			}
			h := newHarness(b, harnessOpts{llmURL: url})
			refs := make([]fhir.Ref, b.N)
			for i := range refs {
				raw, _ := json.Marshal(map[string]any{
					"resourceType": "Observation", "id": fmt.Sprintf("k-%d", i), "status": "final",
					"code":          map[string]any{"coding": []map[string]string{{"system": "http://loinc.org", "code": "6298-4"}}},
					"subject":       map[string]string{"reference": "Patient/6d23a95e-7e18-4201-90ec-9501fa89fbd2"},
					"valueQuantity": map[string]any{"value": 6.9, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
				})
				r, err := h.fhir.Put(raw)
				if err != nil {
					b.Fatal(err)
				}
				refs[i] = r.Ref()
			}
			b.ResetTimer()
			for _, r := range refs {
				h.postRef(r)
				h.waitFor("escalation", func() bool {
					ds := h.decisionsFor(r)
					return len(ds) == 1 && ds[0].Disposition == "ESCALATED"
				})
			}
			b.StopTimer()
			var ms float64
			ctx := context.Background()
			if err := h.db.Owner.QueryRow(ctx, `SELECT avg(extract(epoch FROM escalated_at - received_at) * 1000) FROM decisions`).Scan(&ms); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(ms, "ms/escalation")
		})
	}
}
