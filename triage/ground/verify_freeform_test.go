package ground_test

import (
	"testing"
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/triage/ground"
)

// TestRelativeDates: relative dates are checked against Options.Now; with a
// zero Now they cannot be resolved and are not checked (as ages).
func TestRelativeDates(t *testing.T) {
	t.Parallel()
	snap := snapshots(t)["alfreda"] // labs 2020-12-01, message 2021-01-14, Now 2021-01-15
	k, _ := latestObs(snap, "Potassium")
	msg := snap.Trigger.Ref().String()
	tests := []struct {
		text string
		refs []string
		now  time.Time
		ok   bool
	}{
		{"Potassium 4.7 mmol/L last month.", []string{k.Ref}, now, true},
		{"Potassium 4.7 mmol/L about 6 weeks ago.", []string{k.Ref}, now, true},
		{"Potassium 4.7 mmol/L yesterday.", []string{k.Ref}, now, false},
		{"Potassium 4.7 mmol/L last week.", []string{k.Ref}, now, false},
		{"Potassium 4.7 mmol/L 3 days ago.", []string{k.Ref, msg}, now, false},
		{"Potassium 4.7 mmol/L yesterday.", []string{k.Ref}, time.Time{}, true},
		{"Message sent yesterday.", []string{msg}, now, true},
		{"Potassium 4.7 mmol/L on Dec 1.", []string{k.Ref}, now, true},
		{"Potassium 4.7 mmol/L on Dec 2.", []string{k.Ref}, now, false},
		{"Potassium 4.7 mmol/L on Dec 1.", []string{k.Ref}, now.AddDate(2, 0, 0), false}, // a yearless date reads as this past year
	}
	for _, tc := range tests {
		res := ground.Verify(snap, draft("physician", 0.8, "r", "", claim(tc.text, tc.refs...)), ground.Options{Now: tc.now})
		if res.Grounded != tc.ok {
			t.Errorf("%q (now %v): grounded %v, want %v: %s", tc.text, tc.now.Format("2006-01-02"), res.Grounded, tc.ok, describe(res))
		}
	}
	// Replies plan ("today", "this week"); only past-tense relative dates are facts there.
	later := now.AddDate(0, 0, 20)
	for _, tc := range []struct {
		reply string
		ok    bool
	}{
		{"A nurse will call you today or later this week.", true},
		{"Your potassium from yesterday was normal.", false},
		{"Your results from a year ago were normal.", false}, // nothing in the snapshot is dated around 2020-02
	} {
		res := ground.Verify(snap, draft("triage", 0.8, "r", tc.reply, claim("Message received.", msg)), ground.Options{Now: later})
		if res.Grounded != tc.ok {
			t.Errorf("reply %q: grounded %v, want %v: %s", tc.reply, res.Grounded, tc.ok, describe(res))
		}
	}
}

// TestSymbolAnalytes: "K+" and "Na+" name their analyte, so a right value
// under the wrong symbol is caught.
func TestSymbolAnalytes(t *testing.T) {
	t.Parallel()
	snap := snapshots(t)["alfreda"]
	k, _ := latestObs(snap, "Potassium")
	na, _ := latestObs(snap, "Sodium")
	for _, tc := range []struct {
		text string
		ref  string
		ok   bool
	}{
		{"K+ " + fmtv(k.Value) + " mEq/L.", k.Ref, true},
		{"K+ " + fmtv(na.Value) + " mEq/L.", na.Ref, false},
		{"Na+ " + fmtv(na.Value) + ".", na.Ref, true},
		{"Na+ " + fmtv(k.Value) + ".", k.Ref, false},
	} {
		res := ground.Verify(snap, draft("physician", 0.8, "r", "", claim(tc.text, tc.ref)), ground.Options{Now: now})
		if res.Grounded != tc.ok {
			t.Errorf("%q: grounded %v, want %v: %s", tc.text, res.Grounded, tc.ok, describe(res))
		}
	}
}

// TestFactCacheFollowsContent: cached facts are not used once a resource's
// content (sha256) differs from the one they were extracted from.
func TestFactCacheFollowsContent(t *testing.T) {
	t.Parallel()
	v := ground.NewVerifier()
	mk := func(value string) *fhir.Snapshot {
		pat := &fhir.Resource{Type: "Patient", ID: "p1", VersionID: "1", Raw: []byte(`{"resourceType":"Patient","id":"p1","birthDate":"1980-01-01"}`)}
		pat.SHA256 = fhir.Hash(pat.Raw)
		obs := &fhir.Resource{Type: "Observation", ID: "o1", VersionID: "1",
			Raw: []byte(`{"resourceType":"Observation","id":"o1","code":{"text":"Potassium"},"effectiveDateTime":"2021-01-10","valueQuantity":{"value":` + value + `,"unit":"mmol/L"}}`)}
		obs.SHA256 = fhir.Hash(obs.Raw)
		return &fhir.Snapshot{Trigger: obs, Patient: pat}
	}
	snap := mk("4.1")
	d := draft("physician", 0.8, "r", "", claim("Potassium 4.1 mmol/L.", "Observation/o1"))
	if res := v.Verify(snap, d, ground.Options{Now: now}); !res.Grounded {
		t.Fatalf("want grounded: %s", describe(res))
	}
	other := mk("6.9")
	*snap.Trigger = *other.Trigger // same pointer, new content
	if res := v.Verify(snap, d, ground.Options{Now: now}); res.Grounded {
		t.Fatal("stale cached facts used after the resource changed")
	}
}

// BenchmarkVerifyCold verifies against a fresh copy of the snapshot's
// resources each time, so that no extracted facts are reused.
func BenchmarkVerifyCold(b *testing.B) {
	snap := snapshots(b)["alfreda"]
	glu, _ := latestObs(snap, "Glucose")
	d := draft("physician", 0.8, "Routine review.", "A nurse will call you.",
		claim("Glucose "+fmtv(glu.Value)+" mg/dL on "+glu.Date+".", glu.Ref),
		claim("Patient reports feeling dizzy for 3 days and asks for a hydrochlorothiazide refill.", snap.Trigger.Ref().String()))
	v := ground.NewVerifier()
	b.ReportAllocs()
	for b.Loop() {
		cp := &fhir.Snapshot{Hash: snap.Hash}
		t, p := *snap.Trigger, *snap.Patient
		cp.Trigger, cp.Patient = &t, &p
		for _, r := range snap.Context {
			c := *r
			cp.Context = append(cp.Context, &c)
		}
		v.Verify(cp, d, ground.Options{Now: now})
	}
}
