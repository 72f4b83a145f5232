package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/access"
	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/triage"
)

// itemView renders an item with only the field groups the role may see.
func itemView(it *triage.Item, vis map[access.FieldGroup]bool) map[string]any {
	v := map[string]any{"id": it.ID}
	if vis[access.FieldQueueStatus] {
		v["queue"], v["disposition"], v["priority"], v["status"] = it.Queue, it.Disposition, it.Priority, it.Status
		v["flags"], v["ack_required"], v["created_at"] = it.Flags, it.AckRequired, it.CreatedAt
		v["has_reply"], v["reply_released"] = it.HasReply, it.ReplyReleased
		if it.AckedAt != nil {
			v["acked_at"], v["acked_by"] = it.AckedAt, it.AckedBy
		}
		if it.ActedAt != nil {
			v["action"], v["reason_code"], v["acted_at"], v["reviewer"] = it.Action, it.ReasonCode, it.ActedAt, it.Reviewer
		}
	}
	if vis[access.FieldPatientRef] {
		v["patient_ref"] = it.PatientRef
	}
	if vis[access.FieldAuditMetadata] || vis[access.FieldQueueStatus] {
		v["decision_id"] = it.DecisionID
	}
	return v
}

// itemAttrs are the ABAC attributes of an item: its patient, department and sensitivity labels.
func itemAttrs(it *triage.Item) access.Attributes {
	return access.Attributes{PatientRef: it.PatientRef, Department: it.Department, Sensitivity: it.Sensitivity,
		PhysicianHold: it.Flags.Has(rules.FlagPhysicianHold)}
}

// relationship records, for the accounting of disclosures and the anomaly
// detectors, how access was granted and whether the reader is on the
// patient's care team.
func (s *Server) relationship(ctx context.Context, rc *reqCtx, patient string, d access.Decision, detail map[string]any) error {
	detail["via"] = d.Via
	if patient == "" || s.d.Policy.CareTeam == nil {
		return nil
	}
	member, err := s.d.Policy.CareTeam.IsMember(ctx, rc.tenant, patient, rc.principal.Subject, s.d.Now())
	if err != nil {
		return err
	}
	detail["care_team"] = member
	if d.Via == access.ViaBreakGlass {
		detail["break_glass"] = true
	}
	return nil
}

func (s *Server) visible(rc *reqCtx) map[access.FieldGroup]bool {
	return access.VisibleFields(rc.principal.Role, false)
}

func (s *Server) listItems(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	f := triage.Filter{Status: q.Get("status"), Disposition: q.Get("disposition"), Priority: q.Get("priority"),
		Queue: q.Get("queue"), PatientRef: q.Get("patient")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			writeError(w, r, http.StatusBadRequest, "invalid", "limit must be 1..500")
			return
		}
		f.Limit = n
	}
	if f.Disposition != "" {
		if _, err := rules.ParseDisposition(f.Disposition); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown disposition filter")
			return
		}
	}
	if f.Priority != "" {
		if _, err := rules.ParsePriority(f.Priority); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown priority filter")
			return
		}
	}
	vis := s.visible(rc)
	var views []map[string]any
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		items, err := triage.ListItems(r.Context(), tx, f)
		if err != nil {
			return err
		}
		patients := map[string]bool{}
		var refs []string
		for _, it := range items {
			// The list shows only what the caller could open: department and sensitivity apply per item.
			if d := s.d.Policy.Decide(r.Context(), rc.principal, access.ActionItemRead, itemAttrs(it)); !d.Allow {
				continue
			}
			views = append(views, itemView(it, vis))
			if it.PatientRef != "" && !patients[it.PatientRef] {
				patients[it.PatientRef] = true
				refs = append(refs, it.PatientRef)
			}
		}
		e := s.readEvent(rc, "review.list")
		e.Resources = refs
		e.Detail = map[string]any{"count": len(items), "filter_queue": f.Queue, "filter_disposition": f.Disposition}
		_, err = audit.Append(r.Context(), tx, e)
		return err
	})
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	if views == nil {
		views = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": views})
}

func (s *Server) readEvent(rc *reqCtx, verb string) audit.Event {
	return audit.Event{TenantID: rc.tenant, OccurredAt: s.d.Now().UTC(), Actor: rc.actor.Subject, ActorRole: rc.actor.Role,
		ClientID: rc.actor.ClientID, OnBehalfOf: rc.actor.OnBehalfOf, Action: audit.ActionRead, Verb: verb, Outcome: "success",
		SourceIP: rc.ip, UserAgent: rc.ua, RequestID: rc.id, Purpose: rc.actor.Purpose}
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	if errors.Is(err, triage.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not-found", "no such item for this tenant")
		return
	}
	s.d.Logger.Error("request failed", "request_id", rc.id, "route", rc.route, "error", err.Error())
	writeError(w, r, http.StatusInternalServerError, "exception", "request failed (request "+rc.id+")")
}

// getItem returns the item and its "why", filtered per role; the read is
// audited in the same transaction, so an unaudited read is never answered.
func (s *Server) getItem(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	vis := s.visible(rc)
	var view map[string]any
	var denied *access.Decision
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		it, err := triage.GetItem(r.Context(), tx, id)
		if err != nil {
			return err
		}
		d := s.d.Policy.Decide(r.Context(), rc.principal, access.ActionItemRead, itemAttrs(it))
		if !d.Allow {
			denied = &d
			return nil
		}
		view = itemView(it, vis)
		ex, err := triage.Explain(r.Context(), tx, rc.tenant, it.DecisionID, s.d.Sealer)
		if err != nil {
			return err
		}
		view["why"] = whyView(ex, vis)
		e := s.readEvent(rc, "review.read")
		e.PatientRef, e.DecisionID = it.PatientRef, it.DecisionID
		e.Detail = map[string]any{"review_item_id": id, "fields": visibleNames(vis)}
		if err := s.relationship(r.Context(), rc, it.PatientRef, d, e.Detail); err != nil {
			return err
		}
		_, err = audit.Append(r.Context(), tx, e)
		return err
	})
	if denied != nil {
		s.deny(w, r, rc, "review.read", *denied)
		return
	}
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

func visibleNames(vis map[access.FieldGroup]bool) []string {
	var out []string
	for _, g := range access.FieldGroups() {
		if vis[g] {
			out = append(out, string(g))
		}
	}
	return out
}

// whyView is the decision's explanation reduced to what the role may see.
func whyView(ex *triage.Explanation, vis map[access.FieldGroup]bool) map[string]any {
	v := map[string]any{}
	if len(ex.Revisions) == 0 {
		return v
	}
	// The latest pipeline revision (not a review) holds the machine's reasoning.
	var last triage.Revision
	for _, rv := range ex.Revisions {
		if rv.Stage != triage.StageReviewed {
			last = rv
		}
	}
	rec := last.Record
	if vis[access.FieldClinicalValues] && vis[access.FieldMessageText] {
		// Reasons quote values and message phrases: clinical content.
		v["reasons"] = rec.Outcome.Reasons
	}
	if vis[access.FieldQueueStatus] {
		v["revision"], v["stage"] = ex.Decision.Revision, ex.Decision.Stage
		v["received_at"], v["escalated_at"], v["decided_at"] = ex.Decision.ReceivedAt, ex.Decision.EscalatedAt, ex.Decision.DecidedAt
	}
	if vis[access.FieldRuleHits] {
		var hits []map[string]any
		for _, h := range rec.RuleHits {
			hv := map[string]any{"rule_id": h.RuleID, "version": h.RuleVersion, "kind": h.Kind, "disposition": h.Disposition, "priority": h.Priority}
			if vis[access.FieldClinicalValues] {
				hv["message"], hv["values"] = h.Message, h.Values
			}
			hits = append(hits, hv)
		}
		v["rule_hits"], v["rule_pack"] = hits, rec.RulePack
	}
	if vis[access.FieldAIDraft] {
		v["draft"], v["grounding"], v["confidence"] = rec.Draft, rec.Grounding, rec.Confidence
		if last.Sealed != nil {
			v["rationale"], v["claims"] = last.Sealed.DraftRationale, last.Sealed.DraftClaims
		}
	}
	if vis[access.FieldReplyDraft] && last.Sealed != nil && last.Sealed.ReplyDraft != "" {
		v["reply_draft"] = last.Sealed.ReplyDraft
	}
	if vis[access.FieldMessageText] && last.Sealed != nil && len(last.Sealed.TriggerRaw) > 0 {
		if txt := messageText(last.Sealed.TriggerRaw); txt != "" {
			v["message_text"] = txt
		}
	}
	if vis[access.FieldAuditMetadata] {
		trig := rec.Trigger
		snap := rec.Snapshot
		if !vis[access.FieldPatientRef] && snap != nil {
			// The versions and hashes are metadata; which patient they belong to is not.
			trig.PatientRef = ""
			s := *snap
			s.Entries = nil
			for _, e := range snap.Entries {
				if e.Type != "Patient" {
					s.Entries = append(s.Entries, e)
				}
			}
			snap = &s
		} else if !vis[access.FieldPatientRef] {
			trig.PatientRef = ""
		}
		v["snapshot"], v["trigger"] = snap, trig
	}
	return v
}

// messageText extracts a Communication's text payloads.
func messageText(raw []byte) string {
	var c struct {
		ResourceType string `json:"resourceType"`
		Payload      []struct {
			ContentString string `json:"contentString"`
		} `json:"payload"`
	}
	if json.Unmarshal(raw, &c) != nil || c.ResourceType != "Communication" {
		return ""
	}
	out := ""
	for _, p := range c.Payload {
		if p.ContentString != "" {
			if out != "" {
				out += "\n"
			}
			out += p.ContentString
		}
	}
	return out
}

type actionBody struct {
	ReasonCode   string `json:"reason_code"`
	Priority     string `json:"priority"`
	Queue        string `json:"queue"`
	Reply        string `json:"reply"`
	ReleaseReply bool   `json:"release_reply"`
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body exceeds %d bytes", mbe.Limit)
		}
		return errors.New("could not read request body")
	}
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %s", jsonErrSafe(err))
	}
	return nil
}

func (s *Server) act(action string) func(http.ResponseWriter, *http.Request, *reqCtx) {
	actionFor := map[string]access.Action{"approve": access.ActionItemApprove, "edit": access.ActionItemEdit, "reject": access.ActionItemReject}[action]
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		var b actionBody
		if err := decodeBody(r, &b); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		id := r.PathValue("id")
		var res *triage.ActionResult
		var denied *access.Decision
		var deniedVerb string
		err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
			it, err := triage.GetItem(r.Context(), tx, id)
			if err != nil {
				return err
			}
			attrs := itemAttrs(it)
			if d := s.d.Policy.Decide(r.Context(), rc.principal, actionFor, attrs); !d.Allow {
				denied, deniedVerb = &d, "review."+action
				return nil
			}
			if b.ReleaseReply {
				if d := s.d.Policy.Decide(r.Context(), rc.principal, access.ActionReplyRelease, attrs); !d.Allow {
					denied, deniedVerb = &d, "review.release_reply"
					return nil
				}
			}
			res, err = s.reviewer.Act(r.Context(), tx, rc.tenant, id, triage.ActionInput{Action: action, ReasonCode: b.ReasonCode,
				Priority: b.Priority, Queue: b.Queue, Reply: b.Reply, ReleaseReply: b.ReleaseReply}, rc.actor)
			return err
		})
		if denied != nil {
			s.deny(w, r, rc, deniedVerb, *denied)
			return
		}
		switch {
		case errors.Is(err, triage.ErrPhysicianRequired):
			s.deny(w, r, rc, "review.release_reply", access.Decision{Reason: access.DenyPhysicianHold})
			return
		case errors.Is(err, triage.ErrReasonRequired), errors.Is(err, triage.ErrBadEdit):
			writeError(w, r, http.StatusBadRequest, "invalid", err.Error())
			return
		case errors.Is(err, triage.ErrAlreadyActed):
			writeError(w, r, http.StatusConflict, "conflict", err.Error())
			return
		case err != nil:
			s.serverError(w, r, rc, err)
			return
		}
		vis := s.visible(rc)
		out := map[string]any{"item": itemView(res.Item, vis)}
		if res.Reply != "" && vis[access.FieldReplyDraft] {
			out["released_reply"] = res.Reply
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	var it *triage.Item
	var denied *access.Decision
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		cur, err := triage.GetItem(r.Context(), tx, id)
		if err != nil {
			return err
		}
		if d := s.d.Policy.Decide(r.Context(), rc.principal, access.ActionItemAck, itemAttrs(cur)); !d.Allow {
			denied = &d
			return nil
		}
		it, err = s.reviewer.Acknowledge(r.Context(), tx, rc.tenant, id, rc.actor)
		return err
	})
	if denied != nil {
		s.deny(w, r, rc, "escalation.acknowledge", *denied)
		return
	}
	if errors.Is(err, triage.ErrNotEscalated) {
		writeError(w, r, http.StatusConflict, "conflict", err.Error())
		return
	}
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": itemView(it, s.visible(rc))})
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	vis := s.visible(rc)
	var out map[string]any
	var denied *access.Decision
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		ex, err := triage.Explain(r.Context(), tx, rc.tenant, id, s.d.Sealer)
		if err != nil {
			return err
		}
		attrs := access.Attributes{PatientRef: ex.Decision.PatientRef}
		if it, err := triage.GetItemByDecision(r.Context(), tx, ex.Decision.ID); err == nil {
			attrs = itemAttrs(it)
		} else if !errors.Is(err, triage.ErrNotFound) {
			return err
		}
		d := s.d.Policy.Decide(r.Context(), rc.principal, access.ActionDecisionExplain, attrs)
		if !d.Allow {
			denied = &d
			return nil
		}
		out = map[string]any{"decision_id": ex.Decision.ID, "why": whyView(ex, vis)}
		if vis[access.FieldQueueStatus] {
			out["disposition"], out["priority"], out["flags"], out["queue"] = ex.Decision.Outcome.Disposition, ex.Decision.Outcome.Priority, ex.Decision.Outcome.Flags, ex.Decision.Outcome.Queue
		}
		if vis[access.FieldPatientRef] {
			out["patient_ref"] = ex.Decision.PatientRef
		}
		e := s.readEvent(rc, "decision.explain")
		e.PatientRef, e.DecisionID = ex.Decision.PatientRef, ex.Decision.ID
		e.Detail = map[string]any{"fields": visibleNames(vis)}
		if err := s.relationship(r.Context(), rc, ex.Decision.PatientRef, d, e.Detail); err != nil {
			return err
		}
		_, err = audit.Append(r.Context(), tx, e)
		return err
	})
	if denied != nil {
		s.deny(w, r, rc, "decision.explain", *denied)
		return
	}
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
