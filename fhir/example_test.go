package fhir_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/vigil-health/vigil/fhir"
)

// A snapshot built through the REST client against the in-memory server.
func Example() {
	st := fhir.NewStore()
	st.SetClock(func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) })
	for _, r := range []string{
		`{"resourceType":"Patient","id":"p1"}`,
		`{"resourceType":"Observation","id":"hgb","status":"final","subject":{"reference":"Patient/p1"},"effectiveDateTime":"2025-12-31T08:00:00Z"}`,
		`{"resourceType":"Condition","id":"ckd","subject":{"reference":"Patient/p1"}}`,
	} {
		if _, err := st.Put([]byte(r)); err != nil {
			panic(err)
		}
	}
	srv := httptest.NewServer(fhir.NewHandler(st))
	defer srv.Close()
	client, err := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL, AllowInsecureLoopback: true})
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	trig, patient, err := fhir.ReadTrigger(ctx, client, fhir.Ref{Type: "Observation", ID: "hgb", Version: "1"})
	if err != nil {
		panic(err)
	}
	snap, err := fhir.BuildSnapshot(ctx, client, trig, patient, fhir.ContextOptions{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		panic(err)
	}
	for _, e := range snap.Entries() {
		fmt.Println(e.Type, e.ID, e.VersionID)
	}
	fmt.Println(fhir.DecisionKey(trig))
	// Output:
	// Observation hgb 1
	// Patient p1 1
	// Condition ckd 1
	// 1
}

func ExampleParseNotification() {
	body := []byte(`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[
		{"name":"subscription","valueReference":{"reference":"Subscription/labs"}},
		{"name":"topic","valueCanonical":"https://ehr.example/SubscriptionTopic/results"},
		{"name":"type","valueCode":"event-notification"},
		{"name":"notification-event","part":[{"name":"event-number","valueString":"42"},
			{"name":"focus","valueReference":{"reference":"Observation/hgb/_history/3"}}]}]}}]}`)
	n, err := fhir.ParseNotification(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.Type, n.Events[0].Number, n.Events[0].Focus)

	_, err = fhir.ParseNotification([]byte(`{"resourceType":"Bundle","type":"transaction"}`))
	fmt.Println(err)
	// Output:
	// event-notification 42 Observation/hgb/_history/3
	// fhir: notification: bundle type is "transaction", want "history": fhir: invalid resource
}
