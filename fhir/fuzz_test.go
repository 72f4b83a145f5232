package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func FuzzParseNotification(f *testing.F) {
	for _, name := range []string{"notification-full-resource.json", "notification-id-only.json", "notification-handshake.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"SubscriptionStatus","type":"heartbeat","subscription":{"reference":"Subscription/s"},"topic":"t"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNotification(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "fhir: notification: ") {
				t.Fatalf("error %q does not wrap ErrInvalid with the prefix", err)
			}
			return
		}
		switch n.Type {
		case NotificationEvent, NotificationHandshake, NotificationHeartbeat, NotificationQueryStatus, NotificationQueryEvent:
		default:
			t.Fatalf("accepted type %q", n.Type)
		}
		if n.Subscription == "" || n.Topic == "" || (n.Type == NotificationEvent && len(n.Events) == 0) {
			t.Fatalf("accepted an incomplete notification: %+v", n)
		}
		seen := map[string]bool{}
		for _, e := range n.Events {
			if e.Number == "" || seen[e.Number] || !validType(e.Focus.Type) || !validID(e.Focus.ID) {
				t.Fatalf("accepted event %+v", e)
			}
			seen[e.Number] = true
			if r := e.Resource; r != nil {
				if r.Type != e.Focus.Type || r.ID != e.Focus.ID || r.SHA256 != Hash(r.Raw) || !bytes.Contains(data, r.Raw) {
					t.Fatalf("event resource does not match its focus or bytes")
				}
			}
		}
	})
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"Patient/1", "Observation/a.b-c/_history/12", "https://ehr.example/fhir/R4/Patient/1/_history/2?x=1#y",
		"urn:uuid:6d23a95e-7e18-4201-90ec-9501fa89fbd2", "#c1", "Patient/..", "/Patient/1/", "Patient//1", "%2F/Patient/1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if len(s) >= 12 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes its input")
			}
			return
		}
		if !validType(r.Type) || !validID(r.ID) || (r.Version != "" && !validID(r.Version)) {
			t.Fatalf("accepted %+v", r)
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip of %+v gave %+v, %v", r, again, err)
		}
		if again, err := ParseRef("https://ehr.example/fhir/" + r.String()); err != nil || again != r {
			t.Fatalf("absolute form of %+v gave %+v, %v", r, again, err)
		}
	})
}

// seedSnapshot is a small, valid marshalled snapshot.
func seedSnapshot(tb testing.TB) []byte {
	tb.Helper()
	st := NewStore()
	st.SetClock(func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) })
	for _, r := range []string{
		`{"resourceType":"Patient","id":"p"}`,
		`{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p"},"effectiveDateTime":"2025-12-01"}`,
		`{"resourceType":"Observation","id":"o2","status":"final","subject":{"reference":"Patient/p"},"issued":"2025-12-02T10:00:00Z"}`,
		`{"resourceType":"Condition","id":"c","subject":{"reference":"Patient/p"}}`,
	} {
		if _, err := st.Put([]byte(r)); err != nil {
			tb.Fatal(err)
		}
	}
	ctx := context.Background()
	trig, patient, err := ReadTrigger(ctx, st, Ref{Type: "Observation", ID: "o2"})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := BuildSnapshot(ctx, st, trig, patient, ContextOptions{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	f.Add(seedSnapshot(f))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := UnmarshalSnapshot(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		for _, r := range s.Resources() {
			if r.SHA256 != Hash(r.Raw) {
				t.Fatal("accepted a resource whose sha256 does not match")
			}
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		s2, err := UnmarshalSnapshot(b)
		if err != nil {
			t.Fatalf("re-unmarshal: %v", err)
		}
		b2, err := json.Marshal(s2)
		if err != nil || s2.Hash != s.Hash || !bytes.Equal(b, b2) {
			t.Fatalf("round trip not stable: %v", err)
		}
	})
}
