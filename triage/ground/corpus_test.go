package ground_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/triage/ground"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus from the fixture snapshots")

// corpusEntry is one draft of the grounding corpus.
type corpusEntry struct {
	ID        string         `json:"id"`
	Patient   string         `json:"patient"`
	Kind      string         `json:"kind"`
	RuleFloor rules.Priority `json:"rule_floor,omitempty"`
	Draft     llm.Draft      `json:"draft"`
}

const (
	faithfulFile    = "testdata/corpus/faithful.json"
	adversarialFile = "testdata/corpus/adversarial.json"
)

func TestCorpus(t *testing.T) {
	t.Parallel()
	snaps := snapshots(t)
	if *update {
		f, a := generateCorpus(t, snaps)
		writeCorpus(t, faithfulFile, f)
		writeCorpus(t, adversarialFile, a)
	}
	faithful := readCorpus(t, faithfulFile)
	adversarial := readCorpus(t, adversarialFile)
	if len(faithful) < 50 || len(adversarial) < 80 {
		t.Fatalf("corpus too small: %d faithful (want ≥ 50), %d adversarial (want ≥ 80)", len(faithful), len(adversarial))
	}
	v := ground.NewVerifier()
	accepted := 0
	for _, e := range faithful {
		res := v.Verify(snaps[e.Patient], e.Draft, ground.Options{RuleFloor: e.RuleFloor, Now: now})
		if res.Grounded {
			accepted++
		} else {
			t.Errorf("faithful %s (%s) rejected: %s", e.ID, e.Kind, describe(res))
		}
	}
	caught := 0
	byKind := map[string][2]int{}
	for _, e := range adversarial {
		res := v.Verify(snaps[e.Patient], e.Draft, ground.Options{RuleFloor: e.RuleFloor, Now: now})
		k := byKind[e.Kind]
		k[1]++
		if !res.Grounded {
			caught++
			k[0]++
		} else {
			t.Errorf("adversarial %s (%s) accepted", e.ID, e.Kind)
		}
		byKind[e.Kind] = k
	}
	fa := 100 * float64(accepted) / float64(len(faithful))
	ac := 100 * float64(caught) / float64(len(adversarial))
	t.Logf("grounding corpus: adversarial caught %d/%d (%.1f%%); faithful accepted %d/%d (%.1f%%)",
		caught, len(adversarial), ac, accepted, len(faithful), fa)
	for k, n := range byKind {
		t.Logf("  adversarial %-28s caught %d/%d", k, n[0], n[1])
	}
	if caught != len(adversarial) {
		t.Errorf("adversarial caught %.1f%%, want 100%%", ac)
	}
	if fa < 95 {
		t.Errorf("faithful accepted %.1f%%, want ≥ 95%%", fa)
	}
}

func describe(r ground.Result) string {
	var ps []string
	ps = append(ps, r.Problems...)
	for _, c := range r.Failing() {
		ps = append(ps, fmt.Sprintf("claim %d: %s", c.Index, strings.Join(c.Problems, "; ")))
	}
	return strings.Join(ps, " | ")
}

func readCorpus(t *testing.T, path string) []corpusEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read corpus (regenerate with go test ./triage/ground -run TestCorpus -update): %v", err)
	}
	var es []corpusEntry
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return es
}

func writeCorpus(t *testing.T, path string, es []corpusEntry) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(es); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fmtv formats a value the way a draft quotes it (see llm.FormatValue).
func fmtv(n json.Number) string { return llm.FormatValue(n) }

func f64(n json.Number) float64 { v, _ := n.Float64(); return v }

func usDate(d string) string {
	tm, _ := time.Parse("2006-01-02", d)
	return tm.Format("01/02/2006")
}

func longDate(d string) string {
	tm, _ := time.Parse("2006-01-02", d)
	return tm.Format("January 2, 2006")
}

func shiftDate(d string, days int) string {
	tm, _ := time.Parse("2006-01-02", d)
	return tm.AddDate(0, 0, days).Format("2006-01-02")
}

// changeDigit changes the last digit of a formatted value.
func changeDigit(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] >= '0' && b[i] <= '9' {
			b[i] = '0' + (b[i]-'0'+3)%10
			return string(b)
		}
	}
	return s + "1"
}

func draft(route string, conf float64, rationale, reply string, claims ...llm.Claim) llm.Draft {
	return llm.Draft{Priority: rules.Routine, Route: route, Rationale: rationale, Claims: claims, Confidence: conf, ReplyDraft: reply}
}

func claim(text string, refs ...string) llm.Claim { return llm.Claim{Text: text, Evidence: refs} }
