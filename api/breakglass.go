package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/access"
	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/fhir"
)

type breakGlassBody struct {
	Patient string `json:"patient"`
	Reason  string `json:"reason"`
}

// breakGlass grants time-boxed access to one patient, with a mandatory reason,
// a high-severity audit event and an alert for privacy review.
func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var b breakGlassBody
	if err := decodeBody(r, &b); err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	ref, err := fhir.ParseRef(b.Patient)
	if err != nil || ref.Type != "Patient" {
		writeError(w, r, http.StatusBadRequest, "invalid", "patient must be a Patient/id reference")
		return
	}
	var g access.Grant
	err = s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		var err error
		g, err = access.RequestBreakGlass(r.Context(), tx, rc.principal, ref.Unversioned().String(), b.Reason, s.d.Now().UTC(), s.cfg.BreakGlassTTL)
		if err != nil {
			return err
		}
		e := s.readEvent(rc, "breakglass.grant")
		e.Action, e.PatientRef, e.Purpose = audit.ActionExecute, g.PatientRef, "ETREAT"
		e.Detail = map[string]any{"severity": "high", "alert": true, "grant_id": g.ID, "expires_at": g.ExpiresAt.Format(time.RFC3339),
			"reason_length": len(b.Reason)}
		if _, err = audit.Append(r.Context(), tx, e); err != nil {
			return err
		}
		// The privacy office is alerted at once, not at the next anomaly scan.
		_, err = audit.RaiseAlert(r.Context(), tx, audit.Alert{TenantID: rc.tenant, Detector: "break_glass_grant", Severity: "high",
			Actor: rc.actor.Subject, PatientRef: g.PatientRef, Value: 1, Detail: map[string]any{"grant_id": g.ID}}, s.d.Now().UTC())
		return err
	})
	if errors.Is(err, access.ErrInvalidInput) {
		writeError(w, r, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"grant_id": g.ID, "patient": g.PatientRef, "expires_at": g.ExpiresAt})
}

func (s *Server) listBreakGlass(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	since, ok := s.since(w, r)
	if !ok {
		return
	}
	var grants []access.Grant
	err := s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		var err error
		if grants, err = access.ListGrants(r.Context(), tx, since); err != nil {
			return err
		}
		e := s.readEvent(rc, "breakglass.review")
		e.Detail = map[string]any{"count": len(grants)}
		_, err = audit.Append(r.Context(), tx, e)
		return err
	})
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	out := make([]map[string]any, 0, len(grants))
	for _, g := range grants {
		out = append(out, map[string]any{"grant_id": g.ID, "subject": g.Subject, "role": g.Role, "patient": g.PatientRef,
			"reason": g.Reason, "granted_at": g.GrantedAt, "expires_at": g.ExpiresAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": out})
}
