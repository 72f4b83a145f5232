package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Notification types (SubscriptionStatus.type).
const (
	NotificationEvent       = "event-notification"
	NotificationHandshake   = "handshake"
	NotificationHeartbeat   = "heartbeat"
	NotificationQueryStatus = "query-status"
	NotificationQueryEvent  = "query-event"
)

// Notification is a Subscription notification as an EHR posts it (FHIR R4
// Subscriptions backport: a history Bundle whose first entry is the
// SubscriptionStatus, as a Parameters resource; an R4B/R5-style
// SubscriptionStatus resource is accepted too).
type Notification struct {
	// Subscription is the reference of the Subscription that fired, as sent.
	Subscription string
	// Topic is the SubscriptionTopic canonical URL.
	Topic string
	// Type is one of the Notification* constants.
	Type string
	// Events are the notification events, in the order sent.
	Events []Event
}

// Event is one notification event.
type Event struct {
	// Number is the event number as a decimal string (or the string sent).
	Number string
	// Focus is the resource the event is about.
	Focus Ref
	// Resource is the focus resource carried by a full-resource payload; nil
	// for id-only payloads. It is what the sender posted: Vigil's pipeline
	// still reads the focus from the FHIR server before relying on it.
	Resource *Resource
}

// maxEventNumberLen bounds a string event-number.
const maxEventNumberLen = 64

type notificationBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

type parameter struct {
	Name             string          `json:"name"`
	ValueReference   *reference      `json:"valueReference"`
	ValueCanonical   *string         `json:"valueCanonical"`
	ValueURI         *string         `json:"valueUri"`
	ValueURL         *string         `json:"valueUrl"`
	ValueCode        *string         `json:"valueCode"`
	ValueString      *string         `json:"valueString"`
	ValueUnsignedInt json.RawMessage `json:"valueUnsignedInt"`
	ValuePositiveInt json.RawMessage `json:"valuePositiveInt"`
	ValueInteger     json.RawMessage `json:"valueInteger"`
	ValueInteger64   json.RawMessage `json:"valueInteger64"`
	ValueDecimal     json.RawMessage `json:"valueDecimal"`
	Part             []parameter     `json:"part"`
}

type parametersResource struct {
	ResourceType string      `json:"resourceType"`
	Parameter    []parameter `json:"parameter"`
}

type subscriptionStatusResource struct {
	ResourceType      string     `json:"resourceType"`
	Type              string     `json:"type"`
	Subscription      *reference `json:"subscription"`
	Topic             string     `json:"topic"`
	NotificationEvent []struct {
		EventNumber json.RawMessage `json:"eventNumber"`
		Focus       *reference      `json:"focus"`
	} `json:"notificationEvent"`
}

// rawEvent is an event before validation.
type rawEvent struct {
	number json.RawMessage
	focus  *reference
}

func notifErr(format string, args ...any) error {
	return invalidf("fhir: notification: "+format, args...)
}

// ParseNotification parses and validates a Subscription notification. The
// body must be a Bundle of type "history" whose first entry's resource is the
// SubscriptionStatus (a Parameters resource with parameters subscription
// (valueReference), topic (valueCanonical or valueUri), type (valueCode) and
// notification-event parts, each with event-number (string or integer) and
// focus (valueReference)). The remaining entries may carry the focus
// resources (full-resource payload): each is matched to the events by its
// type, id and, when the focus is versioned, versionId; a resource whose
// fullUrl names another resource is an error; resources matching no event
// (additional context) are ignored. Entries without a resource (id-only) are
// allowed. Empty-payload notifications (events without focus) are rejected:
// Vigil cannot act on them.
//
// An event-notification must carry at least one event; event numbers must be
// unique. Every error wraps ErrInvalid and names the problem, never content.
// Callers bound the body size before calling (the whole body is decoded).
func ParseNotification(body []byte) (*Notification, error) {
	if !isJSONObject(body) {
		return nil, notifErr("body is not a JSON object")
	}
	var b notificationBundle
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, notifErr("%s", jsonErrorDetail(err))
	}
	if b.ResourceType != "Bundle" {
		return nil, notifErr("resourceType is %s, want \"Bundle\"", quoteCode(b.ResourceType))
	}
	if b.Type != "history" {
		return nil, notifErr("bundle type is %s, want \"history\"", quoteCode(b.Type))
	}
	if len(b.Entry) == 0 || len(b.Entry[0].Resource) == 0 || string(b.Entry[0].Resource) == "null" {
		return nil, notifErr("first entry has no SubscriptionStatus (Parameters) resource")
	}
	n, events, err := parseStatus(b.Entry[0].Resource)
	if err != nil {
		return nil, err
	}
	switch n.Type {
	case NotificationEvent, NotificationHandshake, NotificationHeartbeat, NotificationQueryStatus, NotificationQueryEvent:
	default:
		return nil, notifErr("type is %s, want one of event-notification, handshake, heartbeat, query-status, query-event", quoteCode(n.Type))
	}
	if n.Subscription == "" {
		return nil, notifErr("subscription reference is missing")
	}
	if n.Topic == "" {
		return nil, notifErr("topic is missing")
	}
	if n.Type == NotificationEvent && len(events) == 0 {
		return nil, notifErr("event-notification has no notification-event")
	}
	seen := map[string]bool{}
	for i, re := range events {
		num, err := eventNumber(re.number)
		if err != nil {
			return nil, notifErr("notification-event %d: %s", i, err)
		}
		if seen[num] {
			return nil, notifErr("notification-event %d: duplicate event-number", i)
		}
		seen[num] = true
		if re.focus == nil || re.focus.Reference == "" {
			return nil, notifErr("notification-event %d has no focus reference", i)
		}
		focus, err := ParseRef(re.focus.Reference)
		if err != nil {
			return nil, notifErr("notification-event %d: focus is not a Type/id reference", i)
		}
		n.Events = append(n.Events, Event{Number: num, Focus: focus})
	}
	for i, e := range b.Entry[1:] {
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			continue // id-only payload
		}
		r, err := newResource(e.Resource)
		if err != nil {
			return nil, notifErr("entry %d: resource has no valid resourceType and id", i+1)
		}
		if e.FullURL != "" && !strings.HasPrefix(e.FullURL, "urn:") {
			fu, err := ParseRef(e.FullURL)
			if err != nil || fu.Type != r.Type || fu.ID != r.ID {
				return nil, notifErr("entry %d: fullUrl does not name its resource", i+1)
			}
		}
		for j := range n.Events {
			ev := &n.Events[j]
			if ev.Resource != nil || ev.Focus.Type != r.Type || ev.Focus.ID != r.ID {
				continue
			}
			if ev.Focus.Version != "" && r.VersionID != "" && ev.Focus.Version != r.VersionID {
				continue
			}
			ev.Resource = r
		}
	}
	return n, nil
}

// parseStatus reads the SubscriptionStatus, as Parameters or as a resource.
func parseStatus(raw json.RawMessage) (*Notification, []rawEvent, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if !isJSONObject(raw) || json.Unmarshal(raw, &head) != nil {
		return nil, nil, notifErr("first entry's resource is not a JSON object")
	}
	switch head.ResourceType {
	case "Parameters":
		return parseStatusParameters(raw)
	case "SubscriptionStatus":
		var s subscriptionStatusResource
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, notifErr("SubscriptionStatus: %s", jsonErrorDetail(err))
		}
		n := &Notification{Type: s.Type, Topic: s.Topic}
		if s.Subscription != nil {
			n.Subscription = s.Subscription.Reference
		}
		var evs []rawEvent
		for _, e := range s.NotificationEvent {
			evs = append(evs, rawEvent{number: e.EventNumber, focus: e.Focus})
		}
		return n, evs, nil
	default:
		return nil, nil, notifErr("first entry's resource is %s, want \"Parameters\" (SubscriptionStatus)", quoteCode(head.ResourceType))
	}
}

func parseStatusParameters(raw json.RawMessage) (*Notification, []rawEvent, error) {
	var p parametersResource
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, nil, notifErr("Parameters: %s", jsonErrorDetail(err))
	}
	n := &Notification{}
	var evs []rawEvent
	for i, prm := range p.Parameter {
		switch prm.Name {
		case "subscription":
			if prm.ValueReference == nil || prm.ValueReference.Reference == "" {
				return nil, nil, notifErr("parameter %d (subscription) has no valueReference.reference", i)
			}
			n.Subscription = prm.ValueReference.Reference
		case "topic":
			switch {
			case prm.ValueCanonical != nil:
				n.Topic = *prm.ValueCanonical
			case prm.ValueURI != nil:
				n.Topic = *prm.ValueURI
			case prm.ValueURL != nil:
				n.Topic = *prm.ValueURL
			default:
				return nil, nil, notifErr("parameter %d (topic) has no valueCanonical or valueUri", i)
			}
		case "type":
			if prm.ValueCode == nil {
				return nil, nil, notifErr("parameter %d (type) has no valueCode", i)
			}
			n.Type = *prm.ValueCode
		case "notification-event":
			ev := rawEvent{}
			for _, part := range prm.Part {
				switch part.Name {
				case "event-number":
					ev.number = part.numberValue()
				case "focus":
					ev.focus = part.ValueReference
				}
			}
			evs = append(evs, ev)
		}
	}
	return n, evs, nil
}

// numberValue returns the event-number's value as raw JSON (string or number).
func (p *parameter) numberValue() json.RawMessage {
	if p.ValueString != nil {
		b, _ := json.Marshal(*p.ValueString)
		return b
	}
	for _, v := range []json.RawMessage{p.ValueUnsignedInt, p.ValuePositiveInt, p.ValueInteger, p.ValueInteger64, p.ValueDecimal} {
		if len(v) > 0 && string(v) != "null" {
			return v
		}
	}
	return nil
}

// eventNumber normalises an event number: a non-empty printable string (at
// most 64 bytes), or a non-negative integer, rendered in decimal.
func eventNumber(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", fmt.Errorf("no event-number")
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("malformed event-number")
		}
		s = strings.TrimSpace(s)
		if s == "" || len(s) > maxEventNumberLen {
			return "", fmt.Errorf("event-number is empty or too long")
		}
		for _, c := range s {
			if c < 0x21 || c > 0x7e {
				return "", fmt.Errorf("event-number has non-printable characters")
			}
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return strconv.FormatUint(u, 10), nil
		}
		return s, nil
	}
	var num json.Number
	if err := json.Unmarshal(v, &num); err != nil {
		return "", fmt.Errorf("event-number is neither a string nor a number")
	}
	u, err := strconv.ParseUint(num.String(), 10, 64)
	if err != nil {
		return "", fmt.Errorf("event-number is not a non-negative integer")
	}
	return strconv.FormatUint(u, 10), nil
}
