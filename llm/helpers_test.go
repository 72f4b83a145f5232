package llm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/internal/fixtures"
)

// Alfreda Wyman, one of the embedded Synthea patients.
const (
	patientID   = "6d23a95e-7e18-4201-90ec-9501fa89fbd2"
	patientMRN  = "3287b938-4670-47eb-91e5-e0ce3df71405"
	patientSSN  = "999-98-7415"
	patientDOB  = "1980-10-28"
	patientTel  = "555-397-1190"
	patientName = "Alfreda"
	patientFam  = "Wyman"
)

var now = time.Date(2021, 1, 15, 12, 0, 0, 0, time.UTC)

var loadStore = sync.OnceValues(func() (*fhir.Store, error) {
	st := fhir.NewStore()
	st.SetClock(func() time.Time { return now })
	if _, err := st.LoadFS(fixtures.Synthea(), "."); err != nil {
		return nil, err
	}
	return st, nil
})

var seq atomic.Int64

// snapshotWith puts extra resources (raw JSON with %[1]s for a unique
// suffix) and builds a snapshot whose trigger is the first of them.
func snapshotWith(t testing.TB, resources ...string) *fhir.Snapshot {
	t.Helper()
	st, err := loadStore()
	if err != nil {
		t.Fatalf("load fixtures: %v", err)
	}
	n := seq.Add(1)
	var trig *fhir.Resource
	for i, r := range resources {
		res, err := st.Put([]byte(fmt.Sprintf(r, fmt.Sprintf("t%d-%d", n, i))))
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		if i == 0 {
			trig = res
		}
	}
	ctx := context.Background()
	tr, pat, err := fhir.ReadTrigger(ctx, st, trig.Ref())
	if err != nil {
		t.Fatalf("read trigger: %v", err)
	}
	snap, err := fhir.BuildSnapshot(ctx, st, tr, pat, fhir.ContextOptions{Now: now})
	if err != nil {
		t.Fatalf("build snapshot: %v", err)
	}
	return snap
}

func message(text string) string {
	b, _ := json.Marshal(text)
	return `{"resourceType":"Communication","id":"msg-%[1]s","status":"completed","subject":{"reference":"Patient/` + patientID +
		`"},"sender":{"reference":"Patient/` + patientID + `"},"sent":"2021-01-14T09:30:00Z","payload":[{"contentString":` + string(b) + `}]}`
}

// excludedObservation is a substance-use result labelled 42 CFR Part 2.
const excludedObservation = `{"resourceType":"Observation","id":"sud-%[1]s","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"42CFRPart2"}]},"status":"final","code":{"text":"ZZSECRET opioid use disorder screening"},"subject":{"reference":"Patient/` + patientID + `"},"effectiveDateTime":"2020-11-01T10:00:00Z","valueString":"positive ZZSECRET"}`

var queues = []string{"triage", "pharmacy", "front_desk", "physician", "on_call"}
