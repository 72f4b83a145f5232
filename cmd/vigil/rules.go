package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

const rulesUsage = `usage: vigil rules <command> [flags]

Offline (files and directories; the embedded default pack unless --pack DIR):
  lint DIR                              compile a pack; every error with file, rule id, line and column
  eval [--pack DIR] [--trigger ID] [--age YEARS] [--now RFC3339] FILE
                                        evaluate a resource, or a bundle (its first entry, or --trigger,
                                        is the trigger; the rest is context); prints JSON
  test [--pack DIR] [--json] CASES-DIR  run golden cases; non-zero exit when any fails
  diff OLD-PACK NEW-PACK CASES-DIR      list the cases whose outcome changes ("default" names the
                                        embedded pack)

Against the database (VIGIL_DATABASE_URL; audited):
  publish --tenant T DIR                upload a pack version (lint first; stored immutably)
  activate --tenant T VERSION           activate a version (must pass the golden cases)
  list --tenant T                       stored versions, checks and activations
  cases import --tenant T DIR           store golden cases (*.json) for the tenant
  replay [--tenant T] [--json] DECISION-ID
                                        re-evaluate a decision's stored snapshot with the pack it
                                        recorded (VIGIL_KEY_FILE opens the sealed snapshot)
`

func runRules(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(g.Stderr, rulesUsage)
		return 2
	}
	cmds := map[string]func(context.Context, *globals, []string) int{
		"lint": rulesLint, "eval": rulesEval, "test": rulesTest, "diff": rulesDiff,
		"publish": rulesPublish, "activate": rulesActivate, "list": rulesList, "cases": rulesCases, "replay": rulesReplay,
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(g.Stderr, "vigil rules: unknown command %q\n%s", args[0], rulesUsage)
		return 2
	}
	return c(ctx, g, args[1:])
}

// rulesParseArgs parses flags placed before or after the positional arguments.
func rulesParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func rulesFlags(g *globals, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("rules "+name, flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	return fs
}

// rulesLoadPack compiles the pack in dir ("" or "default": the embedded pack) and
// prints every compile error (file:line:column: rule "id": message).
func rulesLoadPack(g *globals, cmd, dir string) (*rules.Pack, bool) {
	var p *rules.Pack
	var err error
	if dir == "" || dir == "default" {
		p, err = rules.DefaultPack()
	} else {
		p, err = rules.Compile(os.DirFS(dir))
	}
	if err != nil {
		rulesPrintCompileErrors(g.Stderr, "vigil rules "+cmd, dir, err)
		return nil, false
	}
	return p, true
}

func rulesPrintCompileErrors(w io.Writer, prefix, dir string, err error) {
	var ce rules.CompileErrors
	if !errors.As(err, &ce) {
		fmt.Fprintf(w, "%s: %v\n", prefix, err)
		return
	}
	fmt.Fprintf(w, "%s: pack %s refused, %d error(s):\n", prefix, packLabel(dir), len(ce))
	for _, e := range ce {
		fmt.Fprintf(w, "  %s\n", strings.TrimPrefix(e.Error(), "rules: "))
	}
}

func packLabel(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

func rulesLint(_ context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "lint")
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(g.Stderr, "usage: vigil rules lint DIR")
		return 2
	}
	p, ok := rulesLoadPack(g, "lint", pos[0])
	if !ok {
		return 1
	}
	fmt.Fprintf(g.Stdout, "ok: pack %s version %s, %d rules, sha256 %s\n", p.Name(), p.Version(), len(p.Rules()), p.SHA256())
	return 0
}

// ruleEvalValue is one triggering value in eval's JSON.
type ruleEvalValue struct {
	Analyte        string   `json:"analyte,omitempty"`
	System         string   `json:"system,omitempty"`
	Code           string   `json:"code,omitempty"`
	Value          *float64 `json:"value,omitempty"`
	Unit           string   `json:"unit,omitempty"`
	OriginalValue  string   `json:"original_value,omitempty"`
	OriginalUnit   string   `json:"original_unit,omitempty"`
	Comparator     string   `json:"comparator,omitempty"`
	Interpretation string   `json:"interpretation,omitempty"`
	Limit          *float64 `json:"limit,omitempty"`
	Category       string   `json:"category,omitempty"`
	Phrase         string   `json:"phrase,omitempty"`
}

type ruleEvalHit struct {
	ID          string          `json:"id"`
	Version     string          `json:"version"`
	Kind        string          `json:"kind"`
	Disposition string          `json:"disposition"`
	Priority    string          `json:"priority"`
	Flags       []string        `json:"flags"`
	Queue       string          `json:"queue"`
	Message     string          `json:"message"`
	Values      []ruleEvalValue `json:"values"`
}

type ruleEvalFloor struct {
	Disposition string   `json:"disposition"` // "NONE" when no rule fired
	Priority    string   `json:"priority"`    // "none" when no rule fired
	Flags       []string `json:"flags"`
	Queue       string   `json:"queue"`
	Escalates   bool     `json:"escalates"`
}

type ruleEvalOutput struct {
	Pack    map[string]string `json:"pack"`
	Trigger string            `json:"trigger"`
	Context int               `json:"context_resources"`
	Now     time.Time         `json:"now"`
	Fired   []ruleEvalHit     `json:"fired"`
	Floor   ruleEvalFloor     `json:"floor"`
	Reasons []string          `json:"reasons"`
}

func rulesEval(_ context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "eval")
	packDir := fs.String("pack", "", "pack directory (default: the embedded default pack)")
	trigger := fs.String("trigger", "", "trigger entry in a bundle: resource id, Type/id or fullUrl (default: the first entry)")
	age := fs.String("age", "", "patient age in years (default: from a Patient in the bundle, if any)")
	nowFlag := fs.String("now", "", "evaluation time, RFC 3339 (default: now)")
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(g.Stderr, "usage: vigil rules eval [--pack DIR] [--trigger ID] [--age YEARS] [--now RFC3339] RESOURCE-OR-BUNDLE.json")
		return 2
	}
	in := rules.Input{Now: time.Now().UTC()}
	if *nowFlag != "" {
		if in.Now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
			fmt.Fprintf(g.Stderr, "vigil rules eval: --now %q: want RFC 3339\n", *nowFlag)
			return 2
		}
	}
	if *age != "" {
		a, err := strconv.ParseFloat(*age, 64)
		if err != nil || a < 0 || a > 150 {
			fmt.Fprintf(g.Stderr, "vigil rules eval: --age %q: want years, 0-150\n", *age)
			return 2
		}
		in.PatientAgeYears = &a
	}
	p, ok := rulesLoadPack(g, "eval", *packDir)
	if !ok {
		return 1
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules eval: %v\n", err)
		return 1
	}
	var ref string
	if in.Trigger, in.Context, ref, err = rulesSplitBundle(b, *trigger); err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules eval: %s: %v\n", pos[0], err)
		return 1
	}
	out, err := p.Evaluate(in)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules eval: %s: %v\n", pos[0], err)
		return 1
	}
	res := ruleEvalOutput{Pack: map[string]string{"name": p.Name(), "version": p.Version(), "sha256": p.SHA256()},
		Trigger: ref, Context: len(in.Context), Now: in.Now, Fired: []ruleEvalHit{}, Reasons: out.Reasons,
		Floor: ruleEvalFloor{Disposition: ruleOrNone(out.Disposition.String(), "NONE"), Priority: ruleOrNone(out.Priority.String(), "none"),
			Flags: ruleStrings(out.Flags.Strings()), Queue: out.Queue, Escalates: out.Escalates()}}
	if res.Reasons == nil {
		res.Reasons = []string{}
	}
	for _, h := range out.Hits {
		eh := ruleEvalHit{ID: h.RuleID, Version: h.RuleVersion, Kind: string(h.Kind), Disposition: h.Disposition.String(),
			Priority: h.Priority.String(), Flags: ruleStrings(h.Flags.Strings()), Queue: h.Queue, Message: h.Message, Values: []ruleEvalValue{}}
		for _, v := range h.Values {
			eh.Values = append(eh.Values, ruleEvalValue(v))
		}
		res.Fired = append(res.Fired, eh)
	}
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		return 1
	}
	return 0
}

func ruleOrNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func ruleStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// rulesSplitBundle returns the trigger and context of a resource or bundle, as
// rules.EvalBundle chooses them: a single resource is the trigger; in a
// Bundle, the entry whose id, Type/id or fullUrl is triggerID (default: the
// first entry) is the trigger and every other entry is context.
func rulesSplitBundle(b []byte, triggerID string) (json.RawMessage, []json.RawMessage, string, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, nil, "", fmt.Errorf("not a FHIR resource or bundle: %w", err)
	}
	if head.ResourceType == "" {
		return nil, nil, "", errors.New("not a FHIR resource or bundle: no resourceType")
	}
	if head.ResourceType != "Bundle" {
		if triggerID != "" && triggerID != head.ID && triggerID != head.ResourceType+"/"+head.ID {
			return nil, nil, "", rules.ErrTriggerNotFound
		}
		return b, nil, head.ResourceType + "/" + head.ID, nil
	}
	idx, ref := -1, ""
	for i, e := range head.Entry {
		if len(e.Resource) == 0 {
			continue
		}
		var r struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		_ = json.Unmarshal(e.Resource, &r)
		if triggerID == "" || r.ID == triggerID || r.ResourceType+"/"+r.ID == triggerID || (e.FullURL != "" && e.FullURL == triggerID) {
			idx, ref = i, r.ResourceType+"/"+r.ID
			break
		}
	}
	if idx < 0 {
		return nil, nil, "", rules.ErrTriggerNotFound
	}
	var ctx []json.RawMessage
	for i, e := range head.Entry {
		if i != idx && len(e.Resource) > 0 {
			ctx = append(ctx, e.Resource)
		}
	}
	return head.Entry[idx].Resource, ctx, ref, nil
}

func rulesTest(_ context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "test")
	packDir := fs.String("pack", "", "pack directory (default: the embedded default pack)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(g.Stderr, "usage: vigil rules test [--pack DIR] [--json] CASES-DIR")
		return 2
	}
	p, ok := rulesLoadPack(g, "test", *packDir)
	if !ok {
		return 1
	}
	cases, err := rules.LoadCases(os.DirFS(pos[0]), ".")
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules test: %v\n", err)
		return 1
	}
	if len(cases) == 0 {
		fmt.Fprintf(g.Stderr, "vigil rules test: no *.json cases in %s\n", pos[0])
		return 1
	}
	res := rules.RunCases(p, cases)
	failed := 0
	type jsonResult struct {
		Name string   `json:"name"`
		Pass bool     `json:"pass"`
		Diff []string `json:"diff,omitempty"`
	}
	var js []jsonResult
	for _, r := range res {
		if !r.Pass {
			failed++
		}
		jr := jsonResult{Name: r.Name, Pass: r.Pass}
		if r.Diff != "" {
			jr.Diff = strings.Split(r.Diff, "\n")
		}
		js = append(js, jr)
		if *asJSON {
			continue
		}
		if r.Pass {
			fmt.Fprintf(g.Stdout, "PASS  %s\n", r.Name)
			continue
		}
		fmt.Fprintf(g.Stdout, "FAIL  %s\n", r.Name)
		for _, d := range jr.Diff {
			fmt.Fprintf(g.Stdout, "      %s\n", d)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"pack": p.Version(), "sha256": p.SHA256(), "passed": len(res) - failed, "failed": failed, "cases": js})
	} else {
		fmt.Fprintf(g.Stdout, "%d of %d cases pass (pack %s, sha256 %s)\n", len(res)-failed, len(res), p.Version(), p.SHA256()[:16])
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func rulesDiff(_ context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "diff")
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 3 {
		fmt.Fprintln(g.Stderr, "usage: vigil rules diff OLD-PACK NEW-PACK CASES-DIR   (\"default\" names the embedded pack)")
		return 2
	}
	oldP, ok := rulesLoadPack(g, "diff", pos[0])
	if !ok {
		return 1
	}
	newP, ok := rulesLoadPack(g, "diff", pos[1])
	if !ok {
		return 1
	}
	cases, err := rules.LoadCases(os.DirFS(pos[2]), ".")
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules diff: %v\n", err)
		return 1
	}
	diffs := rules.DiffPacks(oldP, newP, cases)
	for _, d := range diffs {
		fmt.Fprintf(g.Stdout, "CHANGED  %s\n", d.Name)
		for _, l := range strings.Split(d.Diff, "\n") {
			fmt.Fprintf(g.Stdout, "         %s\n", l)
		}
	}
	fmt.Fprintf(g.Stdout, "%d of %d cases change between %s (%s) and %s (%s)\n", len(diffs), len(cases),
		oldP.Version(), oldP.SHA256()[:16], newP.Version(), newP.SHA256()[:16])
	return 0
}

// rulesDB opens the owner connection and a pack store for the database commands.
func rulesDB(ctx context.Context, g *globals, cmd string) (*store.DB, *triage.PackStore, bool) {
	db, err := store.Open(ctx, ownerURL(g))
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules %s: %v\n%s", cmd, err, postgresHint)
		return nil, nil, false
	}
	ps, err := triage.NewPackStore(db, triage.PackStoreConfig{})
	if err != nil {
		db.Close()
		fmt.Fprintf(g.Stderr, "vigil rules %s: %v\n", cmd, err)
		return nil, nil, false
	}
	return db, ps, true
}

func rulesActor(g *globals, as string) triage.Actor {
	r := cliRequester(g, as)
	return triage.Actor{Subject: r.Actor, Role: r.ActorRole, ClientID: r.ClientID, UserAgent: r.UserAgent, Purpose: r.Purpose}
}

func rulesTenantFlag(fs *flag.FlagSet) (*string, *string) {
	return fs.String("tenant", "", "tenant id (required)"), fs.String("as", "", "who is acting (default VIGIL_AUDIT_ACTOR or the OS user)")
}

func rulesCheckTenant(g *globals, cmd, tenant string) bool {
	if !store.ValidTenantID(tenant) {
		fmt.Fprintf(g.Stderr, "vigil rules %s: --tenant is required (a registered tenant id)\n", cmd)
		return false
	}
	return true
}

// rulesReadPackDir reads the pack files of dir (the files Compile reads; others are skipped).
func rulesReadPackDir(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() || !triage.PackFileName(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

func rulesPublish(ctx context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "publish")
	tenant, as := rulesTenantFlag(fs)
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(g.Stderr, "usage: vigil rules publish --tenant T DIR")
		return 2
	}
	if !rulesCheckTenant(g, "publish", *tenant) {
		return 2
	}
	// Lint locally first: a bad pack never reaches the database.
	if _, ok := rulesLoadPack(g, "publish", pos[0]); !ok {
		return 1
	}
	files, err := rulesReadPackDir(pos[0])
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules publish: %v\n", err)
		return 1
	}
	db, ps, ok := rulesDB(ctx, g, "publish")
	if !ok {
		return 1
	}
	defer db.Close()
	pv, err := ps.Publish(ctx, *tenant, files, rulesActor(g, *as))
	if err != nil {
		rulesPrintCompileErrors(g.Stderr, "vigil rules publish", pos[0], err)
		return 1
	}
	state := "published"
	if pv.Duplicate {
		state = "already published (identical)"
	}
	fmt.Fprintf(g.Stdout, "%s: pack %s version %s sha256 %s for tenant %s\n", state, pv.Name, pv.Version, pv.SHA256, *tenant)
	fmt.Fprintf(g.Stdout, "golden cases: %d of %d pass", pv.Checks.CasesPassed, pv.Checks.CasesTotal)
	if len(pv.Checks.CasesFailed) > 0 {
		fmt.Fprintf(g.Stdout, " (failing: %s; activation will be refused)", strings.Join(pv.Checks.CasesFailed, ", "))
	}
	fmt.Fprintf(g.Stdout, "\nactivate with: vigil rules activate --tenant %s %s\n", *tenant, pv.Version)
	return 0
}

func rulesActivate(ctx context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "activate")
	tenant, as := rulesTenantFlag(fs)
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(g.Stderr, "usage: vigil rules activate --tenant T VERSION")
		return 2
	}
	if !rulesCheckTenant(g, "activate", *tenant) {
		return 2
	}
	db, ps, ok := rulesDB(ctx, g, "activate")
	if !ok {
		return 1
	}
	defer db.Close()
	act, err := ps.Activate(ctx, *tenant, pos[0], rulesActor(g, *as))
	var ae *triage.ActivationError
	switch {
	case errors.As(err, &ae):
		fmt.Fprintf(g.Stderr, "vigil rules activate: %s refused: %s (%d of %d golden cases pass)\n", pos[0], ae.Reason, ae.Passed, ae.Total)
		for _, f := range ae.Failed {
			fmt.Fprintf(g.Stderr, "  FAIL %s\n", f.Name)
			for _, l := range strings.Split(f.Diff, "\n") {
				fmt.Fprintf(g.Stderr, "       %s\n", l)
			}
		}
		return 1
	case errors.Is(err, triage.ErrNotFound):
		fmt.Fprintf(g.Stderr, "vigil rules activate: version %s is not published for tenant %s\n", pos[0], *tenant)
		return 1
	case err != nil:
		rulesPrintCompileErrors(g.Stderr, "vigil rules activate", pos[0], err)
		return 1
	}
	prev := act.Previous
	if prev == "" {
		prev = "the default pack"
	}
	fmt.Fprintf(g.Stdout, "activated %s (sha256 %s) for tenant %s, replacing %s; %d of %d golden cases pass\n",
		act.Version, act.SHA256, *tenant, prev, act.CasesPassed, act.CasesTotal)
	return 0
}

func rulesList(ctx context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "list")
	tenant, _ := rulesTenantFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 || !rulesCheckTenant(g, "list", *tenant) {
		fmt.Fprintln(g.Stderr, "usage: vigil rules list --tenant T [--json]")
		return 2
	}
	db, ps, ok := rulesDB(ctx, g, "list")
	if !ok {
		return 1
	}
	defer db.Close()
	vs, err := ps.List(ctx, *tenant)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules list: %v\n", err)
		return 1
	}
	def, err := ps.Default()
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules list: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		if vs == nil {
			vs = []triage.PackVersion{}
		}
		_ = enc.Encode(map[string]any{"tenant": *tenant, "default": def.Version(), "versions": vs})
		return 0
	}
	active := slices.ContainsFunc(vs, func(v triage.PackVersion) bool { return v.Active })
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTIVE\tVERSION\tSHA256\tPUBLISHED\tBY\tCASES")
	for _, v := range vs {
		mark := ""
		if v.Active {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\n", mark, v.Version, v.SHA256[:16], v.PublishedAt.UTC().Format(time.RFC3339), v.PublishedBy, v.Checks.CasesPassed, v.Checks.CasesTotal)
	}
	if !active {
		fmt.Fprintf(tw, "*\t%s (embedded default)\t%s\t\t\t\n", def.Version(), def.SHA256()[:16])
	}
	_ = tw.Flush()
	return 0
}

func rulesCases(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(g.Stderr, "usage: vigil rules cases import --tenant T DIR")
		return 2
	}
	fs := rulesFlags(g, "cases import")
	tenant, as := rulesTenantFlag(fs)
	pos, err := rulesParseArgs(fs, args[1:])
	if err != nil {
		return 2
	}
	if len(pos) != 1 || !rulesCheckTenant(g, "cases import", *tenant) {
		fmt.Fprintln(g.Stderr, "usage: vigil rules cases import --tenant T DIR")
		return 2
	}
	ents, err := os.ReadDir(pos[0])
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules cases import: %v\n", err)
		return 1
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") {
			if files[e.Name()], err = os.ReadFile(filepath.Join(pos[0], e.Name())); err != nil {
				fmt.Fprintf(g.Stderr, "vigil rules cases import: %v\n", err)
				return 1
			}
		}
	}
	db, ps, ok := rulesDB(ctx, g, "cases import")
	if !ok {
		return 1
	}
	defer db.Close()
	n, err := ps.ImportCases(ctx, *tenant, files, rulesActor(g, *as))
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules cases import: %v\n", err)
		return 1
	}
	fmt.Fprintf(g.Stdout, "imported %d golden case(s) for tenant %s\n", n, *tenant)
	return 0
}

func rulesReplay(ctx context.Context, g *globals, args []string) int {
	fs := rulesFlags(g, "replay")
	tenant, as := rulesTenantFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := rulesParseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(g.Stderr, "usage: vigil rules replay [--tenant T] [--json] DECISION-ID")
		return 2
	}
	id := pos[0]
	k, err := keyProvider(g)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules replay: %v\n", err)
		return 1
	}
	sealer, err := seal.New(k)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules replay: %v\n", err)
		return 1
	}
	db, ps, ok := rulesDB(ctx, g, "replay")
	if !ok {
		return 1
	}
	defer db.Close()
	if *tenant == "" {
		t, err := decisionTenant(ctx, db, id)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil rules replay: %v\n", err)
			return 1
		}
		*tenant = t
	}
	actor := rulesActor(g, *as)
	var res *triage.ReplayResult
	err = db.InTenant(ctx, *tenant, func(tx pgx.Tx) error {
		var err error
		if res, err = triage.Replay(ctx, tx, *tenant, id, sealer, ps); err != nil {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Event{TenantID: *tenant, OccurredAt: time.Now().UTC(), Actor: actor.Subject, ActorRole: actor.Role,
			ClientID: actor.ClientID, UserAgent: actor.UserAgent, Action: audit.ActionRead, Verb: "decision.replay", Outcome: audit.OutcomeSuccess,
			DecisionID: res.DecisionID, Purpose: actor.Purpose, Detail: map[string]any{"sealed_opened": true, "match": res.Match}})
		return err
	})
	if errors.Is(err, triage.ErrNotFound) {
		fmt.Fprintf(g.Stderr, "vigil rules replay: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil rules replay: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		for _, r := range res.Revisions {
			verdict := "REPRODUCED"
			if !r.Match {
				verdict = "DIFFERS"
			}
			fmt.Fprintf(g.Stdout, "revision %d [%s] pack %s (sha256 %s) from the stored %s: %s\n", r.Revision, r.Stage, r.Pack.Version, r.Pack.SHA256[:16], r.Input, verdict)
			fmt.Fprintf(g.Stdout, "  recorded  %s %s flags %v rules %v\n", ruleOrNone(r.Recorded.Disposition, "NONE"), ruleOrNone(r.Recorded.Priority, "none"), r.Recorded.Flags, r.Recorded.Rules)
			fmt.Fprintf(g.Stdout, "  replayed  %s %s flags %v rules %v\n", ruleOrNone(r.Replayed.Disposition, "NONE"), ruleOrNone(r.Replayed.Priority, "none"), r.Replayed.Flags, r.Replayed.Rules)
			for _, d := range r.Diff {
				fmt.Fprintf(g.Stdout, "  diff: %s\n", d)
			}
		}
	}
	if !res.Match {
		return 3
	}
	return 0
}
