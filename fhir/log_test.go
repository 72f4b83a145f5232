package fhir

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggingRedacts(t *testing.T) {
	t.Parallel()
	r := res(t, `{"resourceType":"Patient","id":"p-secret","name":[{"family":"Wyman"}]}`)
	s := &Snapshot{Trigger: r, Patient: r}
	s.Hash = HashEntries(s.Entries())
	n := &Notification{Type: NotificationEvent, Events: []Event{{Number: "1", Focus: r.Ref(), Resource: r}}}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "resource", r, "snapshot", s, "notification", n)
	fmt.Fprintf(&buf, "%v %+v %s %v", r, s, n, []*Resource{r})
	if out := buf.String(); strings.Contains(out, "Wyman") || strings.Contains(out, "p-secret") {
		t.Fatalf("log output leaks content: %s", out)
	}
}
