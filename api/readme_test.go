package api

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The README's endpoint table is the rendering of the registry the issue
// asks for: it must list exactly the registered endpoints with their scopes.
func TestReadmeScopeTableMatchesRegistry(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| (GET|POST|PUT|DELETE) \\| `([^`]+)` \\| `?([^`|]+?)`? \\| ([^|]+) \\|$")
	var doc []string
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			doc = append(doc, m[1]+" "+m[2]+" "+strings.TrimSpace(m[3])+" "+strings.TrimSpace(m[4]))
		}
	}
	var reg []string
	for _, ep := range (&Server{}).Endpoints() {
		scope, action := ep.Scope, string(ep.Action)
		if ep.Public {
			scope, action = "public", "—"
		}
		reg = append(reg, ep.Method+" "+ep.Pattern+" "+scope+" "+action)
	}
	sort.Strings(doc)
	sort.Strings(reg)
	if strings.Join(doc, "\n") != strings.Join(reg, "\n") {
		t.Fatalf("README endpoint table differs from the registry.\nREADME:\n%s\n\nregistry:\n%s", strings.Join(doc, "\n"), strings.Join(reg, "\n"))
	}
}
