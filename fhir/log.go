package fhir

import (
	"fmt"
	"log/slog"
	"strconv"
)

// LogValue logs a resource as its type only: never its content or id.
func (r *Resource) LogValue() slog.Value {
	if r == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("type", r.Type))
}

// String shows the snapshot's hash and size, never resource content.
func (s *Snapshot) String() string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("fhir.Snapshot(hash=%s, resources=%d)", s.Hash, len(s.Resources()))
}

// LogValue logs the snapshot's hash and size, never resource content.
func (s *Snapshot) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("hash", s.Hash), slog.Int("resources", len(s.Resources())))
}

// String shows the notification's type and event count, never resource content.
func (n *Notification) String() string {
	if n == nil {
		return "<nil>"
	}
	return "fhir.Notification(" + n.Type + ", events=" + strconv.Itoa(len(n.Events)) + ")"
}

// LogValue logs the notification's type and event count, never resource content.
func (n *Notification) LogValue() slog.Value {
	if n == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("type", n.Type), slog.Int("events", len(n.Events)))
}
