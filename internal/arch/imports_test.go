package arch

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/vigil-health/vigil/"

// allowed lists, for each package, the packages of ours it may import.
// A package missing here fails the test, so a new package needs a decision.
var allowed = map[string][]string{
	"rules":                       {},
	"fhir":                        {},
	"migrations":                  {},
	"seal":                        {},
	"store":                       {"migrations"},
	"audit":                       {"store"},
	"access":                      {"store"},
	"llm":                         {"fhir", "rules"},
	"llm/llmtest":                 {},
	"triage/ground":               {"fhir", "llm", "rules"},
	"triage":                      {"audit", "fhir", "llm", "rules", "seal", "store", "triage/ground", "internal/fixtures", "internal/fixtures/evalcases"},
	"workers":                     {"audit", "migrations", "store", "triage"},
	"api":                         {"access", "audit", "fhir", "rules", "seal", "store", "triage"},
	"internal/fixtures":           {"fhir"},
	"internal/fixtures/evalcases": {},
	"internal/devidp":             {},
	"internal/testdb":             {"migrations", "store"},
	"internal/app":                {"access", "api", "rules", "seal", "store", "triage", "workers"},
	"internal/arch":               {},
	"cmd/vigil":                   {"*"},
}

func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); strings.HasPrefix(n, ".") || n == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		found[pkg] = true
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no import rule in internal/arch: decide what it may import", pkg)
			return nil
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.TrimPrefix(p, module)
			if len(rules) == 1 && rules[0] == "*" {
				continue
			}
			if !contains(rules, dep) {
				t.Errorf("%s imports %s, which ARCHITECTURE.md's import direction does not allow", rel, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for p := range found {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	if len(pkgs) < 15 {
		t.Fatalf("found only %d packages: %v", len(pkgs), pkgs)
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
