package audit

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoRequester is returned by the exports when q.By.Actor is empty: every
// export is itself audited, as someone.
var ErrNoRequester = errors.New("audit: export requires a requester (Query.By.Actor)")

// JSONRecord is the NDJSON export form of a record (one object per line).
type JSONRecord struct {
	TenantID   string          `json:"tenant_id"`
	Seq        int64           `json:"seq"`
	ID         string          `json:"id"`
	OccurredAt time.Time       `json:"occurred_at"`
	Actor      string          `json:"actor"`
	ActorRole  string          `json:"actor_role,omitempty"`
	ClientID   string          `json:"client_id,omitempty"`
	OnBehalfOf string          `json:"on_behalf_of,omitempty"`
	Action     Action          `json:"action"`
	Verb       string          `json:"verb"`
	Outcome    string          `json:"outcome"`
	PatientRef string          `json:"patient_ref,omitempty"`
	Resources  []string        `json:"resources,omitempty"`
	SourceIP   string          `json:"source_ip,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	Purpose    string          `json:"purpose,omitempty"`
	RequestID  string          `json:"request_id,omitempty"`
	DecisionID string          `json:"decision_id,omitempty"`
	Detail     json.RawMessage `json:"detail"`
	EncVersion int             `json:"enc_version"`
	PrevHash   HexBytes        `json:"prev_hash"`
	Hash       HexBytes        `json:"hash"`
}

// JSON returns r in its export form. The hash can be recomputed from it
// (EncodeCanonical with DetailJSON = Detail).
func (r *Record) JSON() JSONRecord {
	d := json.RawMessage(r.DetailJSON)
	if len(d) == 0 {
		d = json.RawMessage("{}")
	}
	return JSONRecord{TenantID: r.TenantID, Seq: r.Seq, ID: r.ID, OccurredAt: r.OccurredAt.UTC(), Actor: r.Actor,
		ActorRole: r.ActorRole, ClientID: r.ClientID, OnBehalfOf: r.OnBehalfOf, Action: r.Action, Verb: r.Verb,
		Outcome: r.Outcome, PatientRef: r.PatientRef, Resources: r.Resources, SourceIP: r.SourceIP, UserAgent: r.UserAgent,
		Purpose: r.Purpose, RequestID: r.RequestID, DecisionID: r.DecisionID, Detail: d, EncVersion: r.EncVersion,
		PrevHash: r.PrevHash, Hash: r.Hash}
}

// Record converts an exported record back (for offline verification).
func (j *JSONRecord) Record() Record {
	r := Record{Seq: j.Seq, ID: j.ID, EncVersion: j.EncVersion, PrevHash: j.PrevHash, Hash: j.Hash, DetailJSON: string(j.Detail)}
	r.TenantID, r.OccurredAt, r.Actor, r.ActorRole, r.ClientID = j.TenantID, j.OccurredAt, j.Actor, j.ActorRole, j.ClientID
	r.OnBehalfOf, r.Action, r.Verb, r.Outcome, r.PatientRef = j.OnBehalfOf, j.Action, j.Verb, j.Outcome, j.PatientRef
	r.Resources, r.SourceIP, r.UserAgent, r.Purpose = j.Resources, j.SourceIP, j.UserAgent, j.Purpose
	r.RequestID, r.DecisionID = j.RequestID, j.DecisionID
	return r
}

// ExportNDJSON writes every record matching q (all pages; Limit and Cursor
// are ignored) as NDJSON and returns how many it wrote. It first appends an
// "audit.export" event as q.By in tx, so an export whose audit record cannot
// be written produces nothing; the caller commits tx and must not release
// w's bytes if that fails.
func ExportNDJSON(ctx context.Context, tx pgx.Tx, q Query, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n, err := export(ctx, tx, q, "ndjson", func(r *Record) error { return enc.Encode(r.JSON()) })
	if err != nil {
		return n, err
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// ExportFHIR writes the records matching q as a FHIR R4 Bundle (type
// collection) of AuditEvent resources following the IHE Basic Audit Log
// Patterns (see FHIRAuditEvent). It is audited like ExportNDJSON.
func ExportFHIR(ctx context.Context, tx pgx.Tx, q Query, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	first := true
	header := false
	stamp := q.By.at().UTC().Format(time.RFC3339)
	n, err := export(ctx, tx, q, "fhir-bundle", func(r *Record) error {
		if !header {
			fmt.Fprintf(bw, `{"resourceType":"Bundle","type":"collection","timestamp":%q,"entry":[`, stamp)
			header = true
		}
		b, err := json.Marshal(FHIRAuditEvent(r))
		if err != nil {
			return err
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		fmt.Fprintf(bw, `{"fullUrl":"urn:uuid:%s","resource":`, r.ID)
		bw.Write(b)
		bw.WriteByte('}')
		return nil
	})
	if err != nil {
		return n, err
	}
	if !header {
		fmt.Fprintf(bw, `{"resourceType":"Bundle","type":"collection","timestamp":%q,"entry":[`, stamp)
	}
	bw.WriteString("]}\n")
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// ExportFHIRNDJSON writes the records matching q as NDJSON of FHIR AuditEvent
// resources (FHIR Bulk Data style). It is audited like ExportNDJSON.
func ExportFHIRNDJSON(ctx context.Context, tx pgx.Tx, q Query, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n, err := export(ctx, tx, q, "fhir-ndjson", func(r *Record) error { return enc.Encode(FHIRAuditEvent(r)) })
	if err != nil {
		return n, err
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// export counts q's matches up to the current head, appends the audit.export
// event, then streams exactly those records to fn.
func export(ctx context.Context, tx pgx.Tx, q Query, format string, fn func(*Record) error) (int, error) {
	if q.By.Actor == "" {
		return 0, ErrNoRequester
	}
	if err := resolveTenant(ctx, tx, &q); err != nil {
		return 0, err
	}
	q.Cursor, q.Limit = "", 0
	var head int64
	err := tx.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM audit_heads WHERE tenant_id = $1), 0)`, q.TenantID).Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("audit: export: %w", err)
	}
	count := 0
	if head > 0 {
		where, args, err := buildWhere(q, head)
		if err != nil {
			return 0, err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE `+where, args...).Scan(&count); err != nil {
			return 0, fmt.Errorf("audit: export: count: %w", err)
		}
	}
	ev := Event{
		TenantID: q.TenantID, OccurredAt: q.By.at(), Actor: q.By.Actor, ActorRole: q.By.ActorRole, ClientID: q.By.ClientID,
		OnBehalfOf: q.By.OnBehalfOf, Action: ActionRead, Verb: "audit.export", Outcome: OutcomeSuccess,
		PatientRef: q.PatientRef, SourceIP: q.By.SourceIP, UserAgent: q.By.UserAgent, Purpose: q.By.Purpose,
		RequestID: q.By.RequestID, DecisionID: q.DecisionID,
		Detail: map[string]any{DetailCount: count, "format": format, "filter": q.filterDetail(), "through_seq": head},
	}
	if q.Resource != "" {
		ev.Resources = []string{q.Resource}
	}
	if _, err := Append(ctx, tx, ev); err != nil {
		return 0, fmt.Errorf("audit: export not audited, nothing exported: %w", err)
	}
	if head == 0 {
		return 0, nil
	}
	n := 0
	err = scan(ctx, tx, q, head, 0, func(r *Record) error {
		n++
		return fn(r)
	})
	if err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// filterDetail describes the query for the export's audit record (the
// patient reference travels in PatientRef, not here).
func (q Query) filterDetail() map[string]any {
	f := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	set("actor", q.Actor)
	set("action", string(q.Action))
	set("verb", q.Verb)
	set("outcome", q.Outcome)
	set("source_ip", q.SourceIP)
	if !q.From.IsZero() {
		f["from"] = q.From.UTC().Format(time.RFC3339Nano)
	}
	if !q.To.IsZero() {
		f["to"] = q.To.UTC().Format(time.RFC3339Nano)
	}
	return f
}

// FHIR code systems used by FHIRAuditEvent.
const (
	sysAuditEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysRestful          = "http://hl7.org/fhir/restful-interaction"
	sysVigilVerb        = "urn:vigil:audit:verb"
	sysActReason        = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	sysSecurityRoleType = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	sysDICOM            = "http://dicom.nema.org/resources/ontology/DCM"
	sysParticipation    = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysEntityType       = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole       = "http://terminology.hl7.org/CodeSystem/object-role"
	sysSourceType       = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysBALPEntityType   = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	balpProfileBase     = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
)

// FHIRAuditEvent maps a record to a FHIR R4 AuditEvent (as a JSON object)
// following the IHE Basic Audit Log Patterns (BALP):
//
//   - type: audit-event-type "rest"; subtype: the restful-interaction for the
//     action (create, read, update, delete, operation) and Vigil's verb;
//   - agent: the user (extra-security-role-type "humanuser", requestor, with
//     role), the client application (DICOM 110153 Source Role ID, with the
//     network address and the user agent) and, when set, the party acted for
//     (v3-ParticipationType "RESP");
//   - source: Vigil, an application server;
//   - entity: the patient (type Person, role Patient), each resource
//     (System Object, Domain Resource), the request id (BALP XrequestId) and
//     the decision id;
//   - purposeOfEvent: the purpose of use (v3-ActReason);
//   - meta.profile: the BALP profile for the action (Patient* when a patient
//     is involved), and an extension carrying the chain position and hash.
func FHIRAuditEvent(r *Record) map[string]any {
	interaction := map[Action]string{ActionCreate: "create", ActionRead: "read", ActionUpdate: "update",
		ActionDelete: "delete", ActionExecute: "operation"}[r.Action]
	outcome := map[string]string{OutcomeSuccess: "0", OutcomeDenied: "4", OutcomeFailure: "8"}[r.Outcome]
	ae := map[string]any{
		"resourceType": "AuditEvent",
		"id":           r.ID,
		"type":         coding(sysAuditEventType, "rest", "RESTful Operation"),
		"subtype":      []any{coding(sysRestful, interaction, ""), coding(sysVigilVerb, r.Verb, "")},
		"action":       string(r.Action),
		"recorded":     r.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		"outcome":      outcome,
		"extension": []any{map[string]any{
			"url":         "urn:vigil:audit:chain",
			"valueString": fmt.Sprintf("%s/%d/%s", r.TenantID, r.Seq, hex.EncodeToString(r.Hash)),
		}},
		"source": map[string]any{
			"site":     r.TenantID,
			"observer": map[string]any{"display": "Vigil"},
			"type":     []any{coding(sysSourceType, "4", "Application Server")},
		},
	}
	if r.Outcome != OutcomeSuccess {
		ae["outcomeDesc"] = r.Outcome
	}
	if p := balpProfile(r); p != "" {
		ae["meta"] = map[string]any{"profile": []any{balpProfileBase + p}}
	}
	user := map[string]any{
		"type":      map[string]any{"coding": []any{coding(sysSecurityRoleType, "humanuser", "human user")}},
		"who":       map[string]any{"identifier": map[string]any{"value": r.Actor}},
		"requestor": true,
	}
	if r.ActorRole != "" {
		user["role"] = []any{map[string]any{"text": r.ActorRole}}
	}
	if r.SourceIP != "" {
		user["network"] = map[string]any{"address": r.SourceIP, "type": "2"}
	}
	agents := []any{user}
	if r.ClientID != "" || r.SourceIP != "" || r.UserAgent != "" {
		client := map[string]any{
			"type":      map[string]any{"coding": []any{coding(sysDICOM, "110153", "Source Role ID")}},
			"requestor": false,
		}
		if r.ClientID != "" {
			client["who"] = map[string]any{"identifier": map[string]any{"value": r.ClientID}}
		}
		if r.UserAgent != "" {
			client["name"] = r.UserAgent
		}
		if r.SourceIP != "" {
			client["network"] = map[string]any{"address": r.SourceIP, "type": "2"}
		}
		agents = append(agents, client)
	}
	if r.OnBehalfOf != "" {
		agents = append(agents, map[string]any{
			"type":      map[string]any{"coding": []any{coding(sysParticipation, "RESP", "responsible party")}},
			"who":       map[string]any{"identifier": map[string]any{"value": r.OnBehalfOf}},
			"requestor": false,
		})
	}
	ae["agent"] = agents
	if r.Purpose != "" {
		ae["purposeOfEvent"] = []any{map[string]any{"coding": []any{coding(sysActReason, r.Purpose, "")}}}
	}
	var entities []any
	if r.PatientRef != "" {
		entities = append(entities, map[string]any{
			"what": map[string]any{"reference": r.PatientRef},
			"type": coding(sysEntityType, "1", "Person"),
			"role": coding(sysObjectRole, "1", "Patient"),
		})
	}
	for _, res := range r.Resources {
		entities = append(entities, map[string]any{
			"what": map[string]any{"reference": res},
			"type": coding(sysEntityType, "2", "System Object"),
			"role": coding(sysObjectRole, "4", "Domain Resource"),
		})
	}
	if r.RequestID != "" {
		entities = append(entities, map[string]any{
			"what": map[string]any{"identifier": map[string]any{"value": r.RequestID}},
			"type": coding(sysBALPEntityType, "XrequestId", "X-Request-Id"),
		})
	}
	if r.DecisionID != "" {
		entities = append(entities, map[string]any{
			"what": map[string]any{"identifier": map[string]any{"system": "urn:vigil:decision", "value": r.DecisionID}},
			"type": coding(sysEntityType, "2", "System Object"),
			"role": coding(sysObjectRole, "3", "Report"),
		})
	}
	if len(entities) > 0 {
		ae["entity"] = entities
	}
	return ae
}

func balpProfile(r *Record) string {
	kind := map[Action]string{ActionCreate: "Create", ActionRead: "Read", ActionUpdate: "Update", ActionDelete: "Delete"}[r.Action]
	if kind == "" {
		return ""
	}
	if r.PatientRef != "" {
		return "IHE.BasicAudit.Patient" + kind
	}
	return "IHE.BasicAudit." + kind
}

func coding(system, code, display string) map[string]any {
	c := map[string]any{"system": system, "code": code}
	if display != "" {
		c["display"] = display
	}
	return c
}
