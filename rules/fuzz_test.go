package rules

import (
	"encoding/json"
	"testing"
	"testing/fstest"
)

func FuzzScanText(f *testing.F) {
	for _, s := range []string{"chest pain", "denies chest pain, no sob", "cantbreathe!!", "", "100.4.5..,,", "no no no but but"} {
		f.Add(s)
	}
	p := mustDefault(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, rf := range p.ScanText(s) {
			if rf.Category == "" || rf.Phrase == "" {
				t.Fatalf("empty red flag for %q", s)
			}
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"6298-4"}]},"valueQuantity":{"value":6.9,"unit":"mmol/L"}}`))
	f.Add([]byte(`{"resourceType":"Communication","payload":[{"contentString":"chest pain"}]}`))
	f.Add([]byte(`{"resourceType":"QuestionnaireResponse","item":[{"answer":[{"valueString":"x","item":[{"answer":[{"valueBoolean":true}]}]}]}]}`))
	f.Add([]byte(`{"resourceType":"Observation","valueString":"<"}`))
	p := mustDefault(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := p.Evaluate(Input{Trigger: json.RawMessage(b)})
		if err == nil && out.PackSHA256 != p.SHA256() {
			t.Fatal("outcome without pack hash")
		}
	})
}

func FuzzCompileRules(f *testing.F) {
	f.Add("rules:\n  - id: a\n    version: \"1\"\n    kind: guard\n    when: HasValue\n    message: x\n")
	f.Add("rules:\n  - id: a\n    when: (\n")
	f.Add(":::")
	f.Fuzz(func(t *testing.T, src string) {
		fsys := fstest.MapFS{
			"pack.yaml":     {Data: []byte("name: f\nversion: \"1\"\n")},
			"analytes.yaml": {Data: []byte("analytes:\n  - name: potassium\n    codes: [\"2823-3\"]\n    unit: mmol/L\n    high: 6.2\n")},
			"lexicon.yaml":  {Data: []byte("categories:\n  - id: c\n    phrases: [\"chest pain\"]\n")},
			"x.rules.yaml":  {Data: []byte(src)},
		}
		p, err := Compile(fsys)
		if (p == nil) == (err == nil) {
			t.Fatalf("Compile returned pack %v and error %v", p != nil, err)
		}
	})
}
