package ground_test

import (
	"strings"
	"testing"

	"github.com/vigil-health/vigil/triage/ground"
)

const (
	freeformFaithfulFile    = "testdata/corpus_freeform/faithful.json"
	freeformAdversarialFile = "testdata/corpus_freeform/adversarial.json"
)

// TestCorpusFreeform scores the held-out freeform corpus: ≥ 95% of the
// faithful drafts accepted and every adversarial draft caught.
func TestCorpusFreeform(t *testing.T) {
	t.Parallel()
	snaps := snapshots(t)
	if *update {
		f, a := generateFreeform(t, snaps)
		writeCorpus(t, freeformFaithfulFile, f)
		writeCorpus(t, freeformAdversarialFile, a)
	}
	faithful := readCorpus(t, freeformFaithfulFile)
	adversarial := readCorpus(t, freeformAdversarialFile)
	if len(faithful) < 80 || len(adversarial) < 40 {
		t.Fatalf("freeform corpus too small: %d faithful (want ≥ 80), %d adversarial (want ≥ 40)", len(faithful), len(adversarial))
	}
	v := ground.NewVerifier()
	accepted, caught := 0, 0
	// Held-out figures exclude the probes written after reading the verifier.
	var hf, hfOK, ha, haOK int
	for _, e := range faithful {
		res := v.Verify(snaps[e.Patient], e.Draft, ground.Options{RuleFloor: e.RuleFloor, Now: now})
		probe := strings.HasPrefix(e.Kind, "probe:")
		if !probe {
			hf++
		}
		if res.Grounded {
			accepted++
			if !probe {
				hfOK++
			}
		} else {
			t.Logf("faithful %s (%s) rejected: %s", e.ID, e.Kind, describe(res))
		}
	}
	for _, e := range adversarial {
		res := v.Verify(snaps[e.Patient], e.Draft, ground.Options{RuleFloor: e.RuleFloor, Now: now})
		probe := strings.HasPrefix(e.Kind, "probe:")
		if !probe {
			ha++
		}
		if !res.Grounded {
			caught++
			if !probe {
				haOK++
			}
		} else {
			t.Errorf("adversarial %s (%s) accepted", e.ID, e.Kind)
		}
	}
	t.Logf("freeform held-out part: adversarial caught %d/%d; faithful accepted %d/%d", haOK, ha, hfOK, hf)
	fa := 100 * float64(accepted) / float64(len(faithful))
	ac := 100 * float64(caught) / float64(len(adversarial))
	t.Logf("freeform corpus: adversarial caught %d/%d (%.1f%%); faithful accepted %d/%d (%.1f%%)",
		caught, len(adversarial), ac, accepted, len(faithful), fa)
	if caught != len(adversarial) {
		t.Errorf("adversarial caught %.1f%%, want 100%%", ac)
	}
	if fa < 95 {
		t.Errorf("faithful accepted %.1f%%, want ≥ 95%%", fa)
	}
}
