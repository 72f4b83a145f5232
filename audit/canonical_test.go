package audit

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{``, `{}`},
		{`{}`, `{}`},
		{`{"b": 1, "a": [true, null, "x"]}`, `{"a":[true,null,"x"],"b":1}`},
		{`{"n": 1.50, "e": 0.00000015}`, `{"e":0.00000015,"n":1.50}`},
		{`{"s": "<a&b> \"q\" \u00e9 \n"}`, `{"s":"<a&b> \"q\" é \n"}`},
		{`{"é": 1, "e": 2, "z": 3}`, `{"e":2,"z":3,"é":1}`},
	}
	for _, tt := range tests {
		got, err := canonicalJSON(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("canonicalJSON(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{`, `{} {}`, `nul`} {
		if _, err := canonicalJSON(bad); err == nil {
			t.Errorf("canonicalJSON(%q) accepted", bad)
		}
	}
}

// Canonical JSON is idempotent and valid JSON.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"b":[1,2,{"c":"\u2028"}],"a":"x\u0000"}`, `{"k":"\xff"}`, `[]`, `"s"`, `1e5`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c1, err := canonicalJSON(s)
		if err != nil {
			return
		}
		c2, err := canonicalJSON(string(c1))
		if err != nil || !bytes.Equal(c1, c2) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, c1, c2, err)
		}
		if !json.Valid(c1) {
			t.Fatalf("canonical form is not JSON: %q", c1)
		}
	})
}
