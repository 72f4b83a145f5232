package rules

import "testing"

func mustDefault(t testing.TB) *Pack {
	t.Helper()
	p, err := DefaultPack()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
