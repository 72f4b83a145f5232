package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/llm/llmtest"
)

const bundledEvalDir = "../../internal/fixtures/evalcases"

func evalGlobals(env map[string]string) (*globals, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &globals{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.DiscardHandler)}, &out, &errb
}

// Message text of the bundled cases that must never appear in a report.
var evalSecrets = []string{"Should I come in or wait", "five days left", "thinking about ending my life", "acting up again"}

func checkNoMessageText(t *testing.T, out string) {
	t.Helper()
	for _, s := range evalSecrets {
		if strings.Contains(out, s) {
			t.Errorf("report contains message text %q", s)
		}
	}
}

func TestEvalCommandBundled(t *testing.T) {
	t.Parallel()
	g, out, errb := evalGlobals(nil)
	if code := runEval(context.Background(), g, []string{bundledEvalDir, "--now", "2026-12-05T00:00:00Z", "--verbose"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	s := out.String()
	for _, want := range []string{
		"cases from " + bundledEvalDir,
		"drafter:    baseline (deterministic, no language model)",
		"nothing written to any database",
		"Agreement with the labels", "priority ", "route ", "disposition ",
		"Priority confusion matrix (rows: label, columns: predicted)", "stat  asap  urgent  routine",
		"Grounding", "rejection rate 0.0%", "invalid model answers", "model unavailable",
		"Calibration", "[0.0, 0.2)", "[0.8, 1.0]",
		"at the configured 0.80", "target precision 0.95:",
		"Cases (label", "critical potassium 6.9 mmol/L", "critical-potassium-high",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	checkNoMessageText(t, s)
	t.Logf("report:\n%s", s)

	// Without a directory, the embedded copy of the same cases is used; without --verbose, no case lines.
	g2, out2, errb2 := evalGlobals(nil)
	if code := runEval(context.Background(), g2, []string{"--now", "2026-12-05T00:00:00Z"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb2)
	}
	if !strings.Contains(out2.String(), "bundled cases") || strings.Contains(out2.String(), "Cases (label") {
		t.Errorf("embedded run:\n%s", out2)
	}
	cut := func(s string) string { return s[strings.Index(s, "Agreement"):] }
	if v := out.String(); cut(out2.String()) != cut(v[:strings.Index(v, "\nCases (label")]) {
		t.Error("the embedded cases and the directory give different reports")
	}
}

func TestEvalCommandJSON(t *testing.T) {
	t.Parallel()
	g, out, errb := evalGlobals(nil)
	if code := runEval(context.Background(), g, []string{"--json", "--target-precision", "0.9", bundledEvalDir}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	rep, _ := doc["report"].(map[string]any)
	for _, k := range []string{"drafter", "cases", "agreement", "confusion", "grounding", "calibration", "at_threshold", "target", "results"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	if n, _ := rep["cases"].(float64); n < 30 {
		t.Errorf("cases = %v", rep["cases"])
	}
	if d, _ := doc["drafter"].(map[string]any); d["kind"] != "baseline" {
		t.Errorf("drafter %v", doc["drafter"])
	}
	if tg, _ := rep["target"].(map[string]any); tg["target_precision"] != 0.9 {
		t.Errorf("target %v", rep["target"])
	}
	checkNoMessageText(t, out.String())
}

func TestEvalCommandModel(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.Hallucinate("physician"))
	g, out, errb := evalGlobals(map[string]string{"OPENAI_API_KEY": "sk-test-secret"})
	args := []string{"--llm-base-url", srv.URL, "--llm-model", "m1", "--allow-insecure-loopback", "--timeout", "5s", bundledEvalDir}
	if code := runEval(context.Background(), g, args); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	s := out.String()
	for _, want := range []string{"drafter:    OpenAI-compatible model m1", srv.URL, "rejection rate 100.0%", "not reached"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "sk-test-secret") || strings.Contains(errb.String(), "sk-test-secret") {
		t.Error("the API key was printed")
	}
	if srv.Calls() == 0 {
		t.Error("the model was never called")
	}
}

func TestEvalCommandBadInput(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "x.json"), []byte(`{"name":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--llm-base-url", "http://10.0.0.1:8000/v1", "--llm-model", "m"}, 2, "https"},
		{[]string{"--llm-base-url", "https://example.test/v1"}, 2, "--llm-model is required"},
		{[]string{"--target-precision", "1.5"}, 2, "--target-precision"},
		{[]string{"--now", "yesterday"}, 2, "--now"},
		{[]string{filepath.Join(empty, "missing")}, 2, "not a directory"},
		{[]string{empty}, 1, "no *.json case files"},
		{[]string{bad}, 1, "x.json"},
		{[]string{empty, bad}, 2, "usage"},
	} {
		g, _, errb := evalGlobals(nil)
		if code := runEval(context.Background(), g, tc.args); code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d containing %q", tc.args, code, errb, tc.code, tc.msg)
		}
	}
}
