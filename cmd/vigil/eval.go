package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-health/vigil/internal/fixtures"
	"github.com/vigil-health/vigil/internal/fixtures/evalcases"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/triage"
)

const evalUsage = `usage: vigil eval [flags] [CASES-DIR]

Runs the triage pipeline in memory (no database, no queue writes) over
labelled cases (one JSON file per case; the bundled set when CASES-DIR is
omitted), laid over the embedded Synthea patients, and prints agreement with
the labels, the priority confusion matrix, the grounding rejection rate, a
calibration table and the confidence threshold reaching a target precision.
Message text is never printed.

flags:`

// evalDrafterDesc describes the drafter for the report header (no secrets).
type evalDrafterDesc struct {
	Kind     string `json:"kind"` // baseline or openai
	Model    string `json:"model,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
}

// evalOutput is what --json prints.
type evalOutput struct {
	Cases   string             `json:"cases"`
	Drafter evalDrafterDesc    `json:"drafter"`
	Report  *triage.EvalReport `json:"report"`
}

func runEval(ctx context.Context, g *globals, args []string) int {
	fl := flag.NewFlagSet("eval", flag.ContinueOnError)
	fl.SetOutput(g.Stderr)
	fl.Usage = func() {
		fmt.Fprintln(g.Stderr, evalUsage)
		fl.PrintDefaults()
	}
	asJSON := fl.Bool("json", false, "print the report as JSON")
	verbose := fl.Bool("verbose", false, "print one line per case (name, label, prediction, confidence, grounding, rules fired)")
	target := fl.Float64("target-precision", triage.DefaultTargetPrecision, "draft precision the threshold search aims for (0..1)")
	threshold := fl.Float64("threshold", triage.DefaultEvalThreshold, "confidence threshold applied to every route, as a tenant's (0..1)")
	baseURL := fl.String("llm-base-url", "", "OpenAI-compatible API base URL (e.g. https://host/v1); empty uses the baseline drafter")
	model := fl.String("llm-model", "", "model id (required with --llm-base-url); the API key is read from OPENAI_API_KEY")
	timeout := fl.Duration("timeout", llm.DefaultTimeout, "bound on one model call, retries included")
	insecure := fl.Bool("allow-insecure-loopback", false, "allow an http:// model URL on a loopback address (development)")
	parallel := fl.Int("parallel", 1, "cases evaluated at once (raise it for a slow model that allows concurrent requests)")
	nowFlag := fl.String("now", "", "evaluation time (RFC 3339; default: the current time), for reproducible reports")

	var dir string
	rest := args
	for len(rest) > 0 {
		if err := fl.Parse(rest); err != nil {
			return 2
		}
		rest = fl.Args()
		if len(rest) > 0 {
			if dir != "" {
				fl.Usage()
				return 2
			}
			dir, rest = rest[0], rest[1:]
		}
	}
	if *target <= 0 || *target > 1 {
		fmt.Fprintln(g.Stderr, "vigil eval: --target-precision must be in (0, 1]")
		return 2
	}
	if *threshold <= 0 || *threshold > 1 {
		fmt.Fprintln(g.Stderr, "vigil eval: --threshold must be in (0, 1]")
		return 2
	}
	if *parallel < 1 || *parallel > 64 {
		fmt.Fprintln(g.Stderr, "vigil eval: --parallel must be in 1..64")
		return 2
	}
	cfg := triage.EvalConfig{Records: fixtures.Synthea(), Threshold: *threshold, TargetPrecision: *target, Parallel: *parallel}
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			fmt.Fprintln(g.Stderr, "vigil eval: --now must be an RFC 3339 time (2026-12-05T00:00:00Z)")
			return 2
		}
		cfg.Now = t
	}

	desc := evalDrafterDesc{Kind: "baseline"}
	switch {
	case *baseURL != "" && *model == "":
		fmt.Fprintln(g.Stderr, "vigil eval: --llm-model is required with --llm-base-url")
		return 2
	case *baseURL == "" && *model != "":
		fmt.Fprintln(g.Stderr, "vigil eval: --llm-base-url is required with --llm-model")
		return 2
	case *baseURL != "":
		if *timeout <= 0 {
			fmt.Fprintln(g.Stderr, "vigil eval: --timeout must be positive")
			return 2
		}
		d, err := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: *baseURL, Model: *model, APIKey: g.Getenv("OPENAI_API_KEY"),
			Timeout: *timeout, AllowInsecureLoopback: *insecure})
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil eval: %v\n", err)
			return 2
		}
		cfg.Drafter = d
		desc = evalDrafterDesc{Kind: "openai", Model: *model, Endpoint: *baseURL}
		// The model may be slow; give the drafting step room for the whole model timeout.
		cfg.DraftTimeout = *timeout + 5*time.Second
	}

	var fsys fs.FS
	casesName := "bundled cases (internal/fixtures/evalcases)"
	if dir == "" {
		fsys = evalcases.FS()
	} else {
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() {
			fmt.Fprintf(g.Stderr, "vigil eval: %s is not a directory\n", dir)
			return 2
		}
		fsys, casesName = os.DirFS(dir), dir
	}
	cases, err := triage.LoadEvalCases(fsys, ".")
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil eval: %v\n", err)
		return 1
	}
	rep, err := triage.Eval(ctx, cfg, cases)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil eval: %v\n", err)
		return 1
	}
	if desc.Kind == "openai" && rep.Model != "" && rep.Model != desc.Model {
		desc.Model = desc.Model + " (served as " + rep.Model + ")"
	}

	if *asJSON {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(evalOutput{Cases: casesName, Drafter: desc, Report: rep}); err != nil {
			fmt.Fprintf(g.Stderr, "vigil eval: %v\n", err)
			return 1
		}
		return 0
	}
	writeEvalReport(g.Stdout, casesName, desc, rep, *verbose)
	return 0
}

func pct(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

func ratioText(r triage.EvalRatio) string {
	if r.Total == 0 {
		return "n/a (none labelled)"
	}
	return fmt.Sprintf("%d/%d  %s", r.Agree, r.Total, pct(r.Rate))
}

// writeEvalReport prints the report for a person. It prints no message
// text, rule messages or values: case names, labels, codes and numbers only.
func writeEvalReport(w io.Writer, casesName string, d evalDrafterDesc, r *triage.EvalReport, verbose bool) {
	fmt.Fprintf(w, "Vigil evaluation: %d cases from %s\n", r.Cases, casesName)
	switch d.Kind {
	case "baseline":
		fmt.Fprintln(w, "drafter:    baseline (deterministic, no language model)")
	default:
		fmt.Fprintf(w, "drafter:    OpenAI-compatible model %s at %s\n", d.Model, d.Endpoint)
	}
	fmt.Fprintf(w, "rule pack:  %s (sha256 %s)\n", r.RulePack, short(r.RulePackSHA256))
	fmt.Fprintf(w, "threshold:  %.2f on every route   evaluated at %s\n", r.Threshold, r.Now.Format(time.RFC3339))
	fmt.Fprintln(w, "mode:       shadow (in memory; nothing written to any database or queue)")

	fmt.Fprintln(w, "\nAgreement with the labels (final decision)")
	fmt.Fprintf(w, "  priority     %s\n", ratioText(r.Agreement.Priority))
	fmt.Fprintf(w, "  route        %s\n", ratioText(r.Agreement.Route))
	fmt.Fprintf(w, "  disposition  %s\n", ratioText(r.Agreement.Disposition))
	var ds []string
	for _, name := range []string{"ESCALATED", "HELD", "MANUAL_TRIAGE", "SUGGESTED"} {
		ds = append(ds, fmt.Sprintf("%s %d", name, r.Dispositions[name]))
	}
	fmt.Fprintf(w, "  predicted dispositions: %s\n", strings.Join(ds, ", "))

	fmt.Fprintln(w, "\nPriority confusion matrix (rows: label, columns: predicted)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  label \\ predicted\t%s\ttotal\t\n", strings.Join(r.Confusion.Labels, "\t"))
	for i, row := range r.Confusion.Counts {
		sum := 0
		cells := make([]string, len(row))
		for j, n := range row {
			cells[j] = fmt.Sprint(n)
			sum += n
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t\n", r.Confusion.Labels[i], strings.Join(cells, "\t"), sum)
	}
	tw.Flush()

	gr := r.Grounding
	fmt.Fprintln(w, "\nGrounding")
	fmt.Fprintf(w, "  drafts from the drafter   %d\n", gr.Drafts)
	if gr.Drafts > 0 {
		fmt.Fprintf(w, "  ungrounded (rejected)     %d   rejection rate %s\n", gr.Ungrounded, pct(gr.RejectionRate))
	} else {
		fmt.Fprintf(w, "  ungrounded (rejected)     %d   rejection rate n/a\n", gr.Ungrounded)
	}
	fmt.Fprintf(w, "  invalid model answers     %d\n", gr.Invalid)
	fmt.Fprintf(w, "  model unavailable         %d\n", gr.Unavailable)
	if gr.Excluded > 0 {
		fmt.Fprintf(w, "  excluded from the model   %d\n", gr.Excluded)
	}

	fmt.Fprintln(w, "\nCalibration (effective confidence of the draft; correct = draft priority and route match the label)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  confidence\tdrafts\tcorrect\taccuracy\tmean conf.\t")
	for i, b := range r.Calibration {
		closing := ")"
		if i == len(r.Calibration)-1 {
			closing = "]"
		}
		acc, mean := "-", "-"
		if b.Count > 0 {
			acc, mean = pct(b.Accuracy), fmt.Sprintf("%.2f", b.MeanConfidence)
		}
		fmt.Fprintf(tw, "  [%.1f, %.1f%s\t%d\t%d\t%s\t%s\t\n", b.Low, b.High, closing, b.Count, b.Correct, acc, mean)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nThreshold (grounded drafts at or above it; coverage = share of all cases)")
	at := r.AtThreshold
	fmt.Fprintf(w, "  at the configured %.2f:  %d drafts, precision %s, coverage %s\n", at.Threshold, at.Covered, precisionText(at), pct(at.Coverage))
	if t := r.Target; t.Reached && t.Point != nil {
		p := *t.Point
		fmt.Fprintf(w, "  target precision %.2f:  reached at t = %.2f (%d/%d correct, precision %s, coverage %s)\n",
			t.Precision, p.Threshold, p.Correct, p.Covered, pct(p.Precision), pct(p.Coverage))
	} else {
		fmt.Fprintf(w, "  target precision %.2f:  not reached at any threshold\n", t.Precision)
	}

	if !verbose {
		return
	}
	fmt.Fprintln(w, "\nCases (label → predicted; draft confidence, grounding, rules fired)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tcase\tlabel\tpredicted\tdraft\tconf.\tgrounded\trules")
	for _, c := range r.Results {
		mark := "ok"
		if !c.PriorityAgrees || !c.RouteAgrees || (c.DispositionAgrees != nil && !*c.DispositionAgrees) {
			mark = "XX"
		}
		label := c.Label.Priority.String() + "/" + c.Label.Route
		if c.Label.Disposition.String() != "" {
			label += "/" + c.Label.Disposition.String()
		}
		draft := c.DraftStatus
		if c.DraftStatus == "ok" {
			draft = c.DraftPriority.String() + "/" + c.DraftRoute
		}
		rulesFired := strings.Join(c.Rules, ",")
		if c.Unavailable != "" {
			rulesFired = "record unavailable"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s/%s/%s\t%s\t%.2f\t%v\t%s\n", mark, c.Name, label,
			c.Priority, c.Queue, c.Disposition, draft, c.Confidence, c.Grounded, orDash(rulesFired))
	}
	tw.Flush()
}

func precisionText(op triage.EvalOperatingPoint) string {
	if op.Covered == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s (%d/%d)", pct(op.Precision), op.Correct, op.Covered)
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
