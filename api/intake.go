package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/triage"
)

// supportedTriggers are the resource types the pipeline triages.
var supportedTriggers = map[string]bool{"Observation": true, "Communication": true, "QuestionnaireResponse": true}

// referenceBody is the plain-reference intake shape.
type referenceBody struct {
	Reference string `json:"reference"`
	EventID   string `json:"event_id"`
}

// intake accepts a Subscription notification bundle or a plain reference.
// Posted content is never trusted: only references are kept, and the worker
// re-reads the resource from the FHIR server.
func (s *Server) intake(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, http.StatusRequestEntityTooLarge, "too-costly", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
			return
		}
		writeError(w, r, http.StatusBadRequest, "structure", "could not read request body")
		return
	}
	events, err := parseIntake(body, rc.principal.ClientID)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	now := s.d.Now().UTC()
	type accepted struct {
		IntakeEventID string `json:"intake_event_id"`
		EventID       string `json:"event_id"`
		Duplicate     bool   `json:"duplicate"`
	}
	var out []accepted
	err = s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		for _, ev := range events {
			ev.TenantID, ev.ReceivedAt = rc.tenant, now
			res, err := triage.RecordIntake(r.Context(), tx, s.d.Enqueue, ev, rc.actor)
			if err != nil {
				return err
			}
			out = append(out, accepted{IntakeEventID: res.ID, EventID: ev.EventID, Duplicate: res.Duplicate})
		}
		return nil
	})
	if err != nil {
		s.d.Logger.Error("intake failed", "request_id", rc.id, "error", err.Error())
		writeError(w, r, http.StatusInternalServerError, "exception", "intake could not be stored (request "+rc.id+")")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": out})
}

// parseIntake validates the body and returns the events it names. Errors name
// the problem and never quote resource content.
func parseIntake(body []byte, clientID string) ([]triage.IntakeEvent, error) {
	var probe struct {
		ResourceType string `json:"resourceType"`
		Reference    string `json:"reference"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, errors.New("body is not a JSON object")
	}
	switch {
	case probe.ResourceType == "Bundle":
		n, err := fhir.ParseNotification(body)
		if err != nil {
			return nil, err
		}
		if len(n.Events) == 0 {
			if n.Type == "handshake" || n.Type == "heartbeat" {
				return nil, nil // nothing to triage
			}
			return nil, errors.New("notification has no events")
		}
		var out []triage.IntakeEvent
		for _, e := range n.Events {
			if !supportedTriggers[e.Focus.Type] {
				return nil, fmt.Errorf("event %s: resource type %s is not triaged (want Observation, Communication or QuestionnaireResponse)", e.Number, e.Focus.Type)
			}
			if e.Number == "" {
				return nil, errors.New("event without an event number")
			}
			out = append(out, triage.IntakeEvent{Source: n.Subscription, EventID: e.Number, Kind: "subscription", Trigger: e.Focus})
		}
		return out, nil
	case probe.ResourceType != "":
		return nil, fmt.Errorf("resourceType %s: post a Subscription notification Bundle or a {\"reference\"} object", probe.ResourceType)
	case probe.Reference != "":
		var rb referenceBody
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rb); err != nil {
			return nil, errors.New("reference body: only \"reference\" and \"event_id\" are accepted")
		}
		ref, err := fhir.ParseRef(rb.Reference)
		if err != nil {
			return nil, errors.New("reference is not Type/id or Type/id/_history/version")
		}
		if !supportedTriggers[ref.Type] {
			return nil, fmt.Errorf("resource type %s is not triaged (want Observation, Communication or QuestionnaireResponse)", ref.Type)
		}
		eventID := strings.TrimSpace(rb.EventID)
		if eventID == "" {
			if ref.Version == "" {
				return nil, errors.New("a reference without event_id must be versioned (Type/id/_history/version)")
			}
			eventID = ref.String()
		}
		if len(eventID) > 200 {
			return nil, errors.New("event_id longer than 200 characters")
		}
		return []triage.IntakeEvent{{Source: "reference:" + clientID, EventID: eventID, Kind: "reference", Trigger: ref}}, nil
	default:
		return nil, errors.New("body has neither resourceType nor reference")
	}
}
