package rules

import (
	"embed"
	"io/fs"
)

//go:embed testdata/cases/*.json
var defaultCaseFiles embed.FS

// DefaultCasesFS returns the golden cases shipped with the default pack
// (rules/testdata/cases) as an fs.FS whose root holds the *.json case files,
// for LoadCases(DefaultCasesFS(), "."). Every pack a tenant activates must
// pass them as well as the tenant's own cases.
func DefaultCasesFS() fs.FS {
	sub, err := fs.Sub(defaultCaseFiles, "testdata/cases")
	if err != nil { // cannot happen: the path is a constant embedded directory
		panic("rules: embedded default cases missing: " + err.Error())
	}
	return sub
}
