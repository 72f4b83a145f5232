package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/fhir"
)

// auditSearch lets auditors search the trail: by patient, user, action,
// resource, time range, outcome and IP, with cursor pagination. The search
// itself is audited in the same transaction.
// auditQuery parses the auditors' filters: patient, user, verb, action,
// resource, outcome, ip, decision, from, to (RFC 3339), cursor, order, limit.
func auditQuery(r *http.Request) (audit.Query, string) {
	v := r.URL.Query()
	q := audit.Query{PatientRef: v.Get("patient"), Actor: v.Get("user"), Verb: v.Get("verb"), Resource: v.Get("resource"),
		Outcome: v.Get("outcome"), SourceIP: v.Get("ip"), DecisionID: v.Get("decision"), Cursor: v.Get("cursor"), Desc: v.Get("order") == "desc"}
	if a := v.Get("action"); a != "" {
		q.Action = audit.Action(a)
		if !q.Action.Valid() {
			return q, "action must be one of C, R, U, D, E"
		}
	}
	for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, name + " must be an RFC 3339 time"
			}
			*dst = t
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return q, "limit must be 1..1000"
		}
		q.Limit = n
	}
	return q, ""
}

func (s *Server) requester(rc *reqCtx) audit.Requester {
	return audit.Requester{Actor: rc.actor.Subject, ActorRole: rc.actor.Role, ClientID: rc.actor.ClientID, OnBehalfOf: rc.actor.OnBehalfOf,
		SourceIP: rc.ip, UserAgent: rc.ua, Purpose: "HOPERAT", RequestID: rc.id}
}

func (s *Server) auditSearch(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q, bad := auditQuery(r)
	if bad != "" {
		writeError(w, r, http.StatusBadRequest, "invalid", bad)
		return
	}
	var page audit.Page
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		var err error
		if page, err = audit.Search(r.Context(), tx, q); err != nil {
			return err
		}
		e := s.readEvent(rc, "audit.search")
		e.PatientRef = q.PatientRef
		e.Detail = map[string]any{"count": len(page.Records), "filter_user": q.Actor != "", "filter_patient": q.PatientRef != ""}
		_, err = audit.Append(r.Context(), tx, e)
		return err
	})
	if errors.Is(err, audit.ErrBadCursor) {
		writeError(w, r, http.StatusBadRequest, "invalid", "cursor was not issued by this search")
		return
	}
	if errors.Is(err, audit.ErrInvalidQuery) {
		writeError(w, r, http.StatusBadRequest, "invalid", "invalid search filter")
		return
	}
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	out := make([]audit.JSONRecord, 0, len(page.Records))
	for i := range page.Records {
		out = append(out, page.Records[i].JSON())
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_cursor": page.NextCursor})
}

// auditExport streams the matching records as NDJSON (format=ndjson, the
// default), a FHIR R4 Bundle of IHE BALP AuditEvents (format=fhir) or FHIR
// NDJSON (format=fhir-ndjson). The export is itself audited, in the same
// transaction: nothing is sent unless that audit record commits.
func (s *Server) auditExport(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q, bad := auditQuery(r)
	if bad != "" {
		writeError(w, r, http.StatusBadRequest, "invalid", bad)
		return
	}
	q.By = s.requester(rc)
	format := r.URL.Query().Get("format")
	exporters := map[string]struct {
		fn          func(context.Context, pgx.Tx, audit.Query, io.Writer) (int, error)
		contentType string
	}{
		"": {audit.ExportNDJSON, "application/x-ndjson"}, "ndjson": {audit.ExportNDJSON, "application/x-ndjson"},
		"fhir": {audit.ExportFHIR, "application/fhir+json"}, "fhir-ndjson": {audit.ExportFHIRNDJSON, "application/fhir+ndjson"},
	}
	ex, ok := exporters[format]
	if !ok {
		writeError(w, r, http.StatusBadRequest, "invalid", "format must be ndjson, fhir or fhir-ndjson")
		return
	}
	var buf bytes.Buffer
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		_, err := ex.fn(r.Context(), tx, q, &buf)
		return err
	})
	if errors.Is(err, audit.ErrInvalidQuery) {
		writeError(w, r, http.StatusBadRequest, "invalid", "invalid export filter")
		return
	}
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	w.Header().Set("Content-Type", ex.contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// auditAlerts lists the anomaly detectors' alerts, newest first.
func (s *Server) auditAlerts(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	since, ok := s.since(w, r)
	if !ok {
		return
	}
	var alerts []audit.Alert
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		var err error
		if alerts, err = audit.ListAlerts(r.Context(), tx, since, 500); err != nil {
			return err
		}
		e := s.readEvent(rc, "audit.alerts")
		e.Detail = map[string]any{"count": len(alerts)}
		_, err = audit.Append(r.Context(), tx, e)
		return err
	})
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	if alerts == nil {
		alerts = []audit.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": alerts})
}

// auditDisclosures is the HIPAA §164.528 accounting of disclosures for one patient.
func (s *Server) auditDisclosures(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	patient := r.URL.Query().Get("patient")
	if ref, err := fhir.ParseRef(patient); err != nil || ref.Type != "Patient" {
		writeError(w, r, http.StatusBadRequest, "invalid", "patient must be a Patient/id reference")
		return
	}
	since := s.d.Now().UTC().AddDate(-6, 0, 0)
	var ds []audit.Disclosure
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		var err error
		if ds, err = audit.Disclosures(r.Context(), tx, patient, since); err != nil {
			return err
		}
		e := s.readEvent(rc, "audit.disclosures")
		e.PatientRef = patient
		e.Detail = map[string]any{"count": len(ds)}
		_, err = audit.Append(r.Context(), tx, e)
		return err
	})
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	if ds == nil {
		ds = []audit.Disclosure{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient": patient, "disclosures": ds})
}

// since reads the optional ?since= (RFC 3339; default 30 days ago), answering 400 itself when malformed.
func (s *Server) since(w http.ResponseWriter, r *http.Request) (time.Time, bool) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return s.d.Now().UTC().Add(-30 * 24 * time.Hour), true
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "since must be RFC 3339")
		return time.Time{}, false
	}
	return t, true
}
