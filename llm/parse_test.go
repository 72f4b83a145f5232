package llm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
)

func TestParseDraft(t *testing.T) {
	t.Parallel()
	const ok = `{"priority":"urgent","route":"triage","rationale":"r","claims":[{"text":"t","evidence":["R1"]}],"confidence":0.5,"reply_draft":""}`
	tests := []struct {
		name   string
		in     string
		reason string // "" = valid
	}{
		{"plain", ok, ""},
		{"fenced", "```json\n" + ok + "\n```", ""},
		{"prose around one object", "Here you go:\n" + ok + "\nThanks!", ""},
		{"reply null", strings.Replace(ok, `"reply_draft":""`, `"reply_draft":null`, 1), ""},
		{"reply omitted", strings.Replace(ok, `,"reply_draft":""`, ``, 1), ""},
		{"upper-case priority", strings.Replace(ok, `"urgent"`, `"URGENT"`, 1), ""},
		{"empty", "", "empty output"},
		{"prose only", "I think this is routine.", "no parseable JSON object"},
		{"array", `[` + ok + `]`, "not a JSON object"},
		{"two objects", ok + "\n" + ok, "more than one JSON object"},
		{"truncated", ok[:50], "no parseable JSON object"},
		{"extra field", strings.Replace(ok, `"confidence"`, `"note":"x","confidence"`, 1), `extra field "note"`},
		{"extra claim field", strings.Replace(ok, `"text":"t"`, `"text":"t","source":"x"`, 1), `extra field "source"`},
		{"unknown route", strings.Replace(ok, `"triage"`, `"radiology"`, 1), "unknown route"},
		{"unknown priority", strings.Replace(ok, `"urgent"`, `"emergent"`, 1), "unknown priority"},
		{"missing priority", strings.Replace(ok, `"priority":"urgent",`, ``, 1), "missing priority"},
		{"missing confidence", strings.Replace(ok, `,"confidence":0.5`, ``, 1), "missing confidence"},
		{"confidence above 1", strings.Replace(ok, `0.5`, `1.5`, 1), "confidence outside"},
		{"confidence negative", strings.Replace(ok, `0.5`, `-0.1`, 1), "confidence outside"},
		{"confidence as string", strings.Replace(ok, `0.5`, `"high"`, 1), "wrong JSON type"},
		{"no claims", strings.Replace(ok, `[{"text":"t","evidence":["R1"]}]`, `[]`, 1), "no claims"},
		{"claim without evidence", strings.Replace(ok, `["R1"]`, `[]`, 1), "claim 1 has no evidence"},
		{"claim evidence missing", strings.Replace(ok, `,"evidence":["R1"]`, ``, 1), "claim 1 has no evidence"},
		{"blank evidence", strings.Replace(ok, `["R1"]`, `["  "]`, 1), "empty evidence"},
		{"claim without text", strings.Replace(ok, `"text":"t"`, `"text":""`, 1), "claim 1 has no text"},
		{"empty rationale", strings.Replace(ok, `"rationale":"r"`, `"rationale":" "`, 1), "empty rationale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := llm.ParseDraft([]byte(tt.in), []string{"triage", "pharmacy"})
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ParseDraft: %v", err)
				}
				if d.Priority != rules.Urgent || d.Route != "triage" || len(d.Claims) != 1 || d.Claims[0].Evidence[0] != "R1" {
					t.Fatalf("draft = %+v", d)
				}
				return
			}
			var oe *llm.OutputError
			if !errors.As(err, &oe) || !errors.Is(err, llm.ErrInvalidOutput) || !strings.Contains(oe.Reason, tt.reason) {
				t.Fatalf("err = %v, want reason containing %q", err, tt.reason)
			}
		})
	}
}

func BenchmarkParseDraft(b *testing.B) {
	raw := []byte("```json\n" + goodDraft + "\n```")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := llm.ParseDraft(raw, queues); err != nil {
			b.Fatal(err)
		}
	}
}
