package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/triage"
)

// Rule-pack administration (issue 3): a tenant's informaticist uploads pack
// versions, lists them and activates one. Every change is audited by
// triage.PackStore (rules.publish, rules.activate, refusals included); the
// list is audited here. Workers pick an activation up on their next job.
//
// The handlers build a PackStore over the server's DB per request: the store
// is stateless apart from caches, which matter to the workers' Active calls,
// not to these rare administrative requests.

func (s *Server) packStore() (*triage.PackStore, error) {
	return triage.NewPackStore(s.d.DB, triage.PackStoreConfig{Now: s.d.Now, Logger: s.d.Logger})
}

type publishBody struct {
	Files map[string]string `json:"files"`
}

// compileErrorView is one problem of a refused pack: file, rule, position
// and the expr/YAML error (pack text, never patient data).
type compileErrorView struct {
	File    string `json:"file"`
	RuleID  string `json:"rule_id,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

func compileErrorViews(ce rules.CompileErrors) []compileErrorView {
	out := make([]compileErrorView, 0, len(ce))
	for _, e := range ce {
		msg := ""
		if e.Err != nil {
			msg = e.Err.Error()
		}
		out = append(out, compileErrorView{File: e.File, RuleID: e.RuleID, Line: e.Line, Column: e.Column, Message: msg})
	}
	return out
}

// writePackError answers the pack-specific errors; false when err is none of them.
func writePackError(w http.ResponseWriter, r *http.Request, err error) bool {
	var ce rules.CompileErrors
	var ae *triage.ActivationError
	switch {
	case errors.As(err, &ce):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid", "detail": "rule pack refused: it does not compile",
			"errors": compileErrorViews(ce)})
	case errors.As(err, &ae):
		failed := make([]map[string]any, 0, len(ae.Failed))
		for _, f := range ae.Failed {
			failed = append(failed, map[string]any{"name": f.Name, "diff": strings.Split(f.Diff, "\n")})
		}
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "business-rule", "detail": "activation refused: " + ae.Reason,
			"version": ae.Version, "cases_passed": ae.Passed, "cases_total": ae.Total, "failed_cases": failed})
	case errors.Is(err, triage.ErrPackFiles):
		writeError(w, r, http.StatusBadRequest, "invalid", strings.TrimPrefix(err.Error(), "triage: "))
	case errors.Is(err, triage.ErrPackExists):
		writeError(w, r, http.StatusConflict, "duplicate", "this version is already published with different content: publish under a new pack.yaml version")
	case errors.Is(err, triage.ErrPackIntegrity):
		writeError(w, r, http.StatusConflict, "conflict", "the stored pack no longer matches its recorded sha256; publish it again under a new version")
	case errors.Is(err, triage.ErrNotFound):
		writeError(w, r, http.StatusNotFound, "not-found", "no such rule pack version for this tenant")
	default:
		return false
	}
	return true
}

// publishPack stores a new pack version (POST /api/v1/rules/packs, body
// {"files": {"pack.yaml": "...", ...}}). A bad pack is refused whole with
// 400 and every compile error.
func (s *Server) publishPack(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var b publishBody
	if err := decodeBody(r, &b); err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if len(b.Files) == 0 {
		writeError(w, r, http.StatusBadRequest, "invalid", `body must be {"files": {"pack.yaml": "...", "analytes.yaml": "...", "lexicon.yaml": "...", "*.rules.yaml": "..."}}`)
		return
	}
	files := make(map[string][]byte, len(b.Files))
	for n, c := range b.Files {
		files[n] = []byte(c)
	}
	ps, err := s.packStore()
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	pv, err := ps.Publish(r.Context(), rc.tenant, files, rc.actor)
	if err != nil {
		if !writePackError(w, r, err) {
			s.serverError(w, r, rc, err)
		}
		return
	}
	status := http.StatusCreated
	if pv.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, pv)
}

// activatePack makes a published version the tenant's active pack (POST
// /api/v1/rules/packs/{version}/activate): refused with 422 and the failing
// golden cases unless every case passes.
func (s *Server) activatePack(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	version := r.PathValue("version")
	if version == "" || len(version) > 100 {
		writeError(w, r, http.StatusBadRequest, "invalid", "version is required")
		return
	}
	ps, err := s.packStore()
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	act, err := ps.Activate(r.Context(), rc.tenant, version, rc.actor)
	if err != nil {
		if !writePackError(w, r, err) {
			s.serverError(w, r, rc, err)
		}
		return
	}
	writeJSON(w, http.StatusOK, act)
}

// listPacks lists the tenant's versions and activations (GET /api/v1/rules/packs).
func (s *Server) listPacks(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ps, err := s.packStore()
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	def, err := ps.Default()
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	vs, err := ps.List(r.Context(), rc.tenant)
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	err = s.d.DB.InTenant(r.Context(), rc.tenant, func(tx pgx.Tx) error {
		e := s.readEvent(rc, "rules.list")
		e.Detail = map[string]any{audit.DetailCount: len(vs)}
		_, err := audit.Append(r.Context(), tx, e)
		return err
	})
	if err != nil {
		s.serverError(w, r, rc, err)
		return
	}
	active := map[string]any{"version": def.Version(), "sha256": def.SHA256(), "default": true}
	for _, v := range vs {
		if v.Active {
			active = map[string]any{"version": v.Version, "sha256": v.SHA256, "default": false}
		}
	}
	if vs == nil {
		vs = []triage.PackVersion{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": active, "versions": vs})
}
