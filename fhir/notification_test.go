package fhir

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNotificationHappy(t *testing.T) {
	t.Parallel()
	t.Run("full-resource", func(t *testing.T) {
		t.Parallel()
		n, err := ParseNotification(readTestdata(t, "notification-full-resource.json"))
		if err != nil {
			t.Fatal(err)
		}
		if n.Subscription != "https://ehr.example/fhir/Subscription/vigil-labs" || n.Topic != "https://ehr.example/SubscriptionTopic/new-results" || n.Type != NotificationEvent || len(n.Events) != 2 {
			t.Fatalf("notification = %+v", n)
		}
		e0, e1 := n.Events[0], n.Events[1]
		if e0.Number != "310" || e0.Focus != (Ref{Type: "Observation", ID: "hgb-1", Version: "2"}) || e0.Resource == nil || e0.Resource.VersionID != "2" {
			t.Fatalf("event 0 = %+v", e0)
		}
		if e1.Number != "311" || e1.Focus.String() != "Communication/msg-7" || e1.Resource == nil || e1.Resource.ID != "msg-7" {
			t.Fatalf("event 1 = %+v", e1)
		}
		if !strings.HasPrefix(string(e1.Resource.Raw), `{"resourceType": "Communication"`) || e1.Resource.SHA256 != Hash(e1.Resource.Raw) {
			t.Fatal("Raw is not the posted bytes")
		}
	})
	t.Run("id-only", func(t *testing.T) {
		t.Parallel()
		n, err := ParseNotification(readTestdata(t, "notification-id-only.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Events) != 1 || n.Events[0].Resource != nil || n.Events[0].Focus.String() != "Communication/msg-9" || n.Events[0].Number != "12" || n.Topic == "" {
			t.Fatalf("notification = %+v", n)
		}
	})
	t.Run("handshake", func(t *testing.T) {
		t.Parallel()
		n, err := ParseNotification(readTestdata(t, "notification-handshake.json"))
		if err != nil || n.Type != NotificationHandshake || len(n.Events) != 0 {
			t.Fatalf("handshake = %+v, %v", n, err)
		}
	})
	t.Run("R4B SubscriptionStatus resource", func(t *testing.T) {
		t.Parallel()
		body := `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"SubscriptionStatus","status":"active","type":"event-notification",
"subscription":{"reference":"Subscription/s"},"topic":"https://ehr.example/t","notificationEvent":[{"eventNumber":"5","focus":{"reference":"Observation/o"}}]}}]}`
		n, err := ParseNotification([]byte(body))
		if err != nil || len(n.Events) != 1 || n.Events[0].Number != "5" {
			t.Fatalf("= %+v, %v", n, err)
		}
	})
}

// phi is planted in malformed notifications; no error may repeat it.
const phi = "Alfreda-Wyman-555-12-3456"

func TestParseNotificationMalformed(t *testing.T) {
	t.Parallel()
	good := readTestdata(t, "notification-full-resource.json")
	edit := func(f func(b map[string]any)) string {
		var b map[string]any
		if err := json.Unmarshal(good, &b); err != nil {
			t.Fatal(err)
		}
		f(b)
		out, _ := json.Marshal(b)
		return string(out)
	}
	entries := func(b map[string]any) []any { return b["entry"].([]any) }
	params := func(b map[string]any) []any {
		return entries(b)[0].(map[string]any)["resource"].(map[string]any)["parameter"].([]any)
	}
	setParams := func(b map[string]any, p []any) {
		entries(b)[0].(map[string]any)["resource"].(map[string]any)["parameter"] = p
	}
	event := func(b map[string]any, i int) map[string]any { return params(b)[5+i].(map[string]any) }
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", phi, "not a JSON object"},
		{"truncated", `{"resourceType":"Bundle","type":"hist`, "JSON"},
		{"array", `[1,2]`, "not a JSON object"},
		{"not a bundle", `{"resourceType":"Patient","id":"p","name":[{"text":"` + phi + `"}]}`, `resourceType is "Patient", want "Bundle"`},
		{"wrong bundle type", edit(func(b map[string]any) { b["type"] = "transaction" }), `bundle type is "transaction", want "history"`},
		{"bundle type is content", edit(func(b map[string]any) { b["type"] = phi + " x" }), `bundle type is (not a code)`},
		{"no entries", `{"resourceType":"Bundle","type":"history"}`, "first entry has no SubscriptionStatus"},
		{"missing Parameters", edit(func(b map[string]any) {
			entries(b)[0].(map[string]any)["resource"] = map[string]any{"resourceType": "Patient", "id": "x"}
		}), `first entry's resource is "Patient"`},
		{"no type", edit(func(b map[string]any) { setParams(b, append(params(b)[:3:3], params(b)[4:]...)) }), "type is (missing)"},
		{"bad type", edit(func(b map[string]any) { params(b)[3].(map[string]any)["valueCode"] = "event" }), `type is "event"`},
		{"no subscription", edit(func(b map[string]any) { setParams(b, params(b)[1:]) }), "subscription reference is missing"},
		{"subscription without reference", edit(func(b map[string]any) {
			params(b)[0].(map[string]any)["valueReference"] = map[string]any{"display": phi}
		}), "parameter 0 (subscription)"},
		{"no topic", edit(func(b map[string]any) { params(b)[1].(map[string]any)["name"] = "x" }), "topic is missing"},
		{"no events", edit(func(b map[string]any) { setParams(b, params(b)[:5]) }), "has no notification-event"},
		{"event without focus", edit(func(b map[string]any) { event(b, 0)["part"] = event(b, 0)["part"].([]any)[:2] }), "notification-event 0 has no focus"},
		{"focus not a reference", edit(func(b map[string]any) {
			event(b, 1)["part"].([]any)[1].(map[string]any)["valueReference"] = map[string]any{"reference": phi + " /x"}
		}), "notification-event 1: focus is not a Type/id reference"},
		{"event without number", edit(func(b map[string]any) { event(b, 1)["part"] = event(b, 1)["part"].([]any)[1:] }), "notification-event 1: no event-number"},
		{"negative number", edit(func(b map[string]any) { event(b, 1)["part"].([]any)[0].(map[string]any)["valueUnsignedInt"] = -3 }), "not a non-negative integer"},
		{"duplicate number", edit(func(b map[string]any) { event(b, 1)["part"].([]any)[0].(map[string]any)["valueUnsignedInt"] = 310 }), "duplicate event-number"},
		{"resource without id", edit(func(b map[string]any) { delete(entries(b)[1].(map[string]any)["resource"].(map[string]any), "id") }), "entry 1: resource has no valid"},
		{"fullUrl mismatch", edit(func(b map[string]any) { entries(b)[2].(map[string]any)["fullUrl"] = "Communication/other" }), "entry 2: fullUrl does not name its resource"},
		{"parameter wrong JSON type", edit(func(b map[string]any) { params(b)[3].(map[string]any)["valueCode"] = 7 }), "unexpected JSON number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseNotification([]byte(tt.body))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "fhir: notification: ") || !strings.Contains(msg, tt.want) {
				t.Fatalf("err = %q, want it to contain %q", msg, tt.want)
			}
			if strings.Contains(msg, "Alfreda") || strings.Contains(msg, "555") {
				t.Fatalf("error quotes content: %q", msg)
			}
		})
	}
}
