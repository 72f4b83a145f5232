package rules

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDefaultPackCompiles(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	if p.Version() == "" || len(p.SHA256()) != 64 || len(p.Rules()) < 20 {
		t.Fatalf("version %q sha %q rules %d", p.Version(), p.SHA256(), len(p.Rules()))
	}
	if err := Lint(DefaultPackFS()); err != nil {
		t.Fatal(err)
	}
	// Deterministic: compiling the same bytes twice gives the same hash and rules.
	q := mustDefault(t)
	if p.SHA256() != q.SHA256() {
		t.Fatal("hash differs between compiles")
	}
	for i, r := range p.Rules() {
		if q.Rules()[i].ID != r.ID {
			t.Fatalf("rule order differs at %d", i)
		}
		if r.File == "" || r.Line == 0 {
			t.Errorf("rule %s has no position", r.ID)
		}
	}
}

func TestBadPackRefusedWhole(t *testing.T) {
	t.Parallel()
	fsys := os.DirFS("testdata/badpack")
	p, err := Compile(fsys)
	if p != nil {
		t.Fatal("Compile returned a pack for a bad pack")
	}
	for _, e := range []error{err, Lint(fsys)} {
		var ce *CompileError
		if !errors.As(e, &ce) {
			t.Fatalf("error %v is not a *CompileError", e)
		}
		if ce.RuleID != "critical-potassium-low" || ce.File != "critical.rules.yaml" || ce.Line != 10 || ce.Column == 0 {
			t.Fatalf("got file %q rule %q line %d column %d", ce.File, ce.RuleID, ce.Line, ce.Column)
		}
		msg := e.Error()
		for _, want := range []string{"critical-potassium-low", "critical.rules.yaml:10:"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not name %q", msg, want)
			}
		}
		if strings.Contains(msg, "critical-potassium-high") {
			t.Errorf("error names the good rule: %q", msg)
		}
	}
}

func TestLintReportsEveryBadRule(t *testing.T) {
	t.Parallel()
	base := os.DirFS("testdata/badpack")
	fsys := fstest.MapFS{}
	for _, n := range []string{"pack.yaml", "analytes.yaml", "lexicon.yaml"} {
		b, err := fs.ReadFile(base, n)
		if err != nil {
			t.Fatal(err)
		}
		fsys[n] = &fstest.MapFile{Data: b}
	}
	fsys["a.rules.yaml"] = &fstest.MapFile{Data: []byte(`rules:
  - id: unknown-ident
    version: "1"
    kind: critical
    when: Potasium > 6
    message: "x"
  - id: not-bool
    version: "1"
    kind: guard
    when: Value + 1
    message: "x"
  - id: bad-template
    version: "1"
    kind: guard
    when: HasValue
    message: "{{.Nope}}"
  - id: weak-critical
    version: "1"
    kind: critical
    disposition: SUGGESTED
    when: HasValue
    message: "x"
  - id: unknown-ident
    version: "1"
    kind: guard
    when: HasValue
    message: "dup"
  - id: block-scalar
    version: "1"
    kind: guard
    when: |
      Fact == "value" &&
        Nope
    message: "x"
`)}
	err := Lint(fsys)
	var ces CompileErrors
	if !errors.As(err, &ces) {
		t.Fatalf("Lint: %v", err)
	}
	got := map[string]bool{}
	for _, ce := range ces {
		got[ce.RuleID] = true
		if ce.File != "a.rules.yaml" || ce.Line == 0 {
			t.Errorf("error without position: %v", ce)
		}
	}
	for _, ce := range ces {
		if ce.RuleID == "block-scalar" && (ce.Line != 33 || ce.Column != 9) {
			t.Errorf("block scalar error at %d:%d, want 33:9", ce.Line, ce.Column)
		}
	}
	for _, id := range []string{"unknown-ident", "not-bool", "bad-template", "weak-critical", "block-scalar"} {
		if !got[id] {
			t.Errorf("Lint did not report %s: %v", id, err)
		}
	}
	if len(ces) < 6 {
		t.Errorf("want 5 errors (incl. duplicate id), got %d: %v", len(ces), err)
	}
}

func TestPackHashCoversEveryFile(t *testing.T) {
	t.Parallel()
	base := os.DirFS("packs/default")
	mk := func(mut func(fstest.MapFS)) string {
		m := fstest.MapFS{}
		for _, n := range []string{"pack.yaml", "analytes.yaml", "lexicon.yaml", "critical.rules.yaml", "abnormal.rules.yaml", "guard.rules.yaml", "redflag.rules.yaml"} {
			b, err := fs.ReadFile(base, n)
			if err != nil {
				t.Fatal(err)
			}
			m[n] = &fstest.MapFile{Data: b}
		}
		mut(m)
		p, err := Compile(m)
		if err != nil {
			t.Fatal(err)
		}
		return p.SHA256()
	}
	h0 := mk(func(fstest.MapFS) {})
	if h0 != mustDefault(t).SHA256() {
		t.Fatal("hash depends on something other than the files")
	}
	h1 := mk(func(m fstest.MapFS) { m["lexicon.yaml"].Data = append(m["lexicon.yaml"].Data, '\n') })
	h2 := mk(func(m fstest.MapFS) { m["README.md"] = &fstest.MapFile{Data: []byte("ignored")} })
	if h1 == h0 || h2 != h0 {
		t.Fatalf("hash: base %s, lexicon changed %s, unrelated file %s", h0, h1, h2)
	}
}
