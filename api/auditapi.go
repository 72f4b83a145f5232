package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

// auditSearch lets auditors search the trail: by patient, user, action,
// resource, time range, outcome and IP, with cursor pagination. The search
// itself is audited in the same transaction.
func (s *Server) auditSearch(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	v := r.URL.Query()
	q := audit.Query{PatientRef: v.Get("patient"), Actor: v.Get("user"), Verb: v.Get("verb"), Resource: v.Get("resource"),
		Outcome: v.Get("outcome"), SourceIP: v.Get("ip"), DecisionID: v.Get("decision"), Cursor: v.Get("cursor"), Desc: v.Get("order") == "desc"}
	if a := v.Get("action"); a != "" {
		q.Action = audit.Action(a)
		if !q.Action.Valid() {
			writeError(w, r, http.StatusBadRequest, "invalid", "action must be one of C, R, U, D, E")
			return
		}
	}
	for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				writeError(w, r, http.StatusBadRequest, "invalid", name+" must be an RFC 3339 time")
				return
			}
			*dst = t
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, r, http.StatusBadRequest, "invalid", "limit must be 1..1000")
			return
		}
		q.Limit = n
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
