package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/access"
	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

// SystemTenant holds audit events that cannot be attributed to a tenant
// (a token whose issuer no tenant trusts). Created by the migrations.
const SystemTenant = "system"

// Authenticator validates a bearer token. *access.Validator implements it.
type Authenticator interface {
	Validate(ctx context.Context, raw string) (*access.Principal, error)
}

// RateLimiter is *access.Limiter as the API sees it.
type RateLimiter interface {
	Allow(ctx context.Context, key string) (bool, time.Duration, error)
}

// Config tunes the server. Zero values take the defaults noted.
type Config struct {
	// MaxBodyBytes caps request bodies (default 1 MiB; a notification with a full resource fits easily).
	MaxBodyBytes int64
	// BreakGlassTTL is how long a break-the-glass grant lasts (default 60 min).
	BreakGlassTTL time.Duration
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.BreakGlassTTL == 0 {
		c.BreakGlassTTL = 60 * time.Minute
	}
	return c
}

// Deps are the server's collaborators.
type Deps struct {
	DB      *store.DB
	Enqueue triage.Enqueuer
	Sealer  *seal.Sealer
	Auth    Authenticator
	Issuers access.TenantIssuers
	Policy  *access.Policy
	Limiter RateLimiter // nil: no rate limiting (tests of other things)
	Now     func() time.Time
	Logger  *slog.Logger
	// Ready reports whether dependencies (database, FHIR, key provider) are reachable.
	Ready func(ctx context.Context) error
}

// Server is the HTTP handler.
type Server struct {
	d        Deps
	cfg      Config
	mux      *http.ServeMux
	reviewer *triage.Reviewer
}

// New builds the server and its router from the endpoint registry.
func New(d Deps, cfg Config) (*Server, error) {
	if d.DB == nil || d.Enqueue == nil || d.Sealer == nil || d.Auth == nil || d.Issuers == nil || d.Policy == nil {
		return nil, errors.New("api: DB, Enqueue, Sealer, Auth, Issuers and Policy are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{d: d, cfg: cfg.WithDefaults(), mux: http.NewServeMux(), reviewer: &triage.Reviewer{Sealer: d.Sealer, Now: d.Now}}
	for _, ep := range s.Endpoints() {
		if !ep.Public && (ep.Scope == "" || ep.Action == "") {
			return nil, fmt.Errorf("api: endpoint %s has no scope or action", ep.Name)
		}
		ep := ep
		s.mux.Handle(ep.Method+" "+ep.Pattern, s.wrap(ep))
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Endpoint is one route with its protection.
type Endpoint struct {
	Name    string
	Method  string
	Pattern string
	// Scope is the SMART v2 scope the token must carry.
	Scope string
	// Action is checked against the role table before the handler runs;
	// patient-level attributes are checked again in the handler once the item is loaded.
	Action access.Action
	Public bool
	handle func(w http.ResponseWriter, r *http.Request, rc *reqCtx)
}

// Endpoints is the registry: every route, its scope and its action.
func (s *Server) Endpoints() []Endpoint {
	return []Endpoint{
		{Name: "healthz", Method: "GET", Pattern: "/healthz", Public: true, handle: s.healthz},
		{Name: "readyz", Method: "GET", Pattern: "/readyz", Public: true, handle: s.readyz},
		{Name: "intake", Method: "POST", Pattern: "/fhir/r4/intake", Scope: "system/Subscription.c", Action: access.ActionIntakePost, handle: s.intake},
		{Name: "review.list", Method: "GET", Pattern: "/api/v1/review-items", Scope: "user/Task.rs", Action: access.ActionQueueList, handle: s.listItems},
		{Name: "review.read", Method: "GET", Pattern: "/api/v1/review-items/{id}", Scope: "user/Task.r", Action: access.ActionItemRead, handle: s.getItem},
		{Name: "review.approve", Method: "POST", Pattern: "/api/v1/review-items/{id}/approve", Scope: "user/Task.u", Action: access.ActionItemApprove, handle: s.act("approve")},
		{Name: "review.edit", Method: "POST", Pattern: "/api/v1/review-items/{id}/edit", Scope: "user/Task.u", Action: access.ActionItemEdit, handle: s.act("edit")},
		{Name: "review.reject", Method: "POST", Pattern: "/api/v1/review-items/{id}/reject", Scope: "user/Task.u", Action: access.ActionItemReject, handle: s.act("reject")},
		{Name: "review.ack", Method: "POST", Pattern: "/api/v1/review-items/{id}/ack", Scope: "user/Task.u", Action: access.ActionItemAck, handle: s.ack},
		{Name: "decision.explain", Method: "GET", Pattern: "/api/v1/decisions/{id}", Scope: "user/Task.r", Action: access.ActionDecisionExplain, handle: s.explain},
		{Name: "audit.search", Method: "GET", Pattern: "/api/v1/audit/events", Scope: "user/AuditEvent.rs", Action: access.ActionAuditSearch, handle: s.auditSearch},
		{Name: "audit.export", Method: "GET", Pattern: "/api/v1/audit/export", Scope: "user/AuditEvent.rs", Action: access.ActionAuditExport, handle: s.auditExport},
		{Name: "audit.alerts", Method: "GET", Pattern: "/api/v1/audit/alerts", Scope: "user/AuditEvent.rs", Action: access.ActionAuditSearch, handle: s.auditAlerts},
		{Name: "audit.disclosures", Method: "GET", Pattern: "/api/v1/audit/disclosures", Scope: "user/AuditEvent.rs", Action: access.ActionAuditSearch, handle: s.auditDisclosures},
		{Name: "breakglass.request", Method: "POST", Pattern: "/api/v1/break-glass", Scope: "user/Patient.r", Action: access.ActionBreakGlassRequest, handle: s.breakGlass},
		{Name: "breakglass.list", Method: "GET", Pattern: "/api/v1/break-glass", Scope: "user/AuditEvent.rs", Action: access.ActionBreakGlassReview, handle: s.listBreakGlass},
		{Name: "rules.publish", Method: "POST", Pattern: "/api/v1/rules/packs", Scope: "user/Library.c", Action: access.ActionRulesPublish, handle: s.publishPack},
		{Name: "rules.activate", Method: "POST", Pattern: "/api/v1/rules/packs/{version}/activate", Scope: "user/Library.u", Action: access.ActionRulesActivate, handle: s.activatePack},
		{Name: "rules.list", Method: "GET", Pattern: "/api/v1/rules/packs", Scope: "user/Library.rs", Action: access.ActionRulesPublish, handle: s.listPacks},
	}
}

// reqCtx is one request's identity and metadata.
type reqCtx struct {
	id        string
	principal *access.Principal
	tenant    string
	actor     triage.Actor
	route     string
	ip, ua    string
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// wrap applies, in order: request id, panic recovery, request log, body limit,
// authentication, tenant binding, rate limit, scope and role checks.
func (s *Server) wrap(ep Endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		rc := &reqCtx{id: newRequestID(), route: ep.Pattern, ip: clientIP(r), ua: truncate(r.UserAgent(), 200)}
		sw.Header().Set("X-Request-Id", rc.id)
		defer func() {
			if p := recover(); p != nil {
				// The panic value and stack may carry request data: log only where it happened.
				s.d.Logger.Error("panic in handler", "request_id", rc.id, "route", ep.Pattern, "stack_top", topFrame(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, r, http.StatusInternalServerError, "exception", "internal error (request "+rc.id+")")
				}
			}
			attrs := []any{"request_id", rc.id, "method", r.Method, "route", ep.Pattern, "status", sw.status,
				"latency_ms", time.Since(start).Milliseconds()}
			if rc.principal != nil {
				attrs = append(attrs, "principal", rc.principal, "tenant_id", rc.tenant)
			}
			s.d.Logger.Info("request", attrs...)
		}()
		// The real ResponseWriter, so net/http learns the body was cut short and
		// closes the connection instead of parsing the rest as a new request.
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if ep.Public {
			ep.handle(sw, r, rc)
			return
		}
		if !s.authenticate(sw, r, rc, ep) {
			return
		}
		if !s.limitBody(sw, r, rc, ep) {
			return
		}
		ep.handle(sw, r, rc)
	})
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, rc *reqCtx, ep Endpoint) bool {
	ctx := r.Context()
	raw, ok := bearer(r)
	if !ok {
		s.refuseAuth(w, r, rc, ep, SystemTenant, "missing bearer token", `Bearer realm="vigil"`)
		return false
	}
	p, err := s.d.Auth.Validate(ctx, raw)
	if err != nil {
		reason := "invalid token"
		var te *access.TokenError
		if errors.As(err, &te) {
			reason = te.Reason
		}
		s.refuseAuth(w, r, rc, ep, SystemTenant, reason, `Bearer realm="vigil", error="invalid_token"`)
		return false
	}
	if err := access.BindTenant(ctx, p, r.Header.Get("Vigil-Tenant"), s.d.Issuers); err != nil {
		// The token is genuine but not for this tenant (a "tenant" claim or
		// Vigil-Tenant header naming a tenant its issuer is not bound to):
		// 403, audited in the system chain with the caller named.
		rc.principal = p
		s.auditDenied(ctx, rc, ep, SystemTenant, "auth.tenant_denied", "token not bound to the tenant")
		rc.principal = nil
		writeError(w, r, http.StatusForbidden, "forbidden", "token not valid for this tenant")
		return false
	}
	rc.principal, rc.tenant = p, p.TenantID
	rc.actor = triage.Actor{Subject: p.Subject, Role: string(p.Role), ClientID: p.ClientID, OnBehalfOf: p.OnBehalfOf,
		SourceIP: rc.ip, UserAgent: rc.ua, RequestID: rc.id, Purpose: "TREAT"}
	if s.d.Limiter != nil {
		for _, key := range []string{"client:" + p.TenantID + ":" + p.ClientID, "user:" + p.TenantID + ":" + p.Subject} {
			ok, retry, err := s.d.Limiter.Allow(ctx, key)
			if err != nil {
				writeError(w, r, http.StatusServiceUnavailable, "transient", "rate limiter unavailable")
				return false
			}
			if !ok {
				secs := int(retry.Round(time.Second) / time.Second)
				if secs < 1 {
					secs = 1
				}
				w.Header().Set("Retry-After", fmt.Sprint(secs))
				s.auditDenied(ctx, rc, ep, p.TenantID, "auth.rate_limited", "rate limit exceeded")
				writeError(w, r, http.StatusTooManyRequests, "throttled", "rate limit exceeded; retry later")
				return false
			}
		}
	}
	if !p.HasScope(ep.Scope) {
		s.auditDenied(ctx, rc, ep, p.TenantID, "auth.scope_denied", "missing scope "+ep.Scope)
		writeError(w, r, http.StatusForbidden, "forbidden", "token lacks scope "+ep.Scope)
		return false
	}
	// Role check now; patient attributes are checked again once the handler has loaded the item.
	if d := s.d.Policy.Decide(ctx, p, ep.Action, access.Attributes{}); !d.Allow {
		s.auditDenied(ctx, rc, ep, p.TenantID, "auth.policy_denied", d.Reason)
		writeError(w, r, http.StatusForbidden, "forbidden", clientDenyMessage(d.Reason))
		return false
	}
	return true
}

// limitBody reads the (already size-capped) body of an authenticated request
// before the handler runs, so that every endpoint answers an oversized body
// with 413, audited, whatever its handler does with read errors.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request, rc *reqCtx, ep Endpoint) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	b, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.auditDenied(r.Context(), rc, ep, rc.tenant, "request.too_large", fmt.Sprintf("body exceeds %d bytes", mbe.Limit))
		writeError(w, r, http.StatusRequestEntityTooLarge, "too-costly", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
		return false
	case err != nil:
		writeError(w, r, http.StatusBadRequest, "structure", "could not read request body")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return true
}

// clientDenyMessage is what a refused caller is told. Policy reasons can
// reveal something about the record (that it carries a sensitivity label, or
// that the patient has a care team), so the client gets a generic message;
// the reason itself is kept in the audit event. Only reasons about the
// caller's own request, which tell it how to proceed, are passed on.
func clientDenyMessage(reason string) string {
	switch reason {
	case access.DenyPhysicianHold, access.DenyRole:
		return "not permitted: " + reason
	}
	return "not permitted"
}

func (s *Server) refuseAuth(w http.ResponseWriter, r *http.Request, rc *reqCtx, ep Endpoint, tenant, reason, challenge string) {
	s.auditDenied(r.Context(), rc, ep, tenant, "auth.token_rejected", reason)
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, r, http.StatusUnauthorized, "login", "authentication required: "+reason)
}

// auditDenied records a refusal. It must not fail the response: the refusal
// stands either way, and a failed audit write is logged for operators.
func (s *Server) auditDenied(ctx context.Context, rc *reqCtx, ep Endpoint, tenant, verb, reason string) {
	e := audit.Event{TenantID: tenant, OccurredAt: s.d.Now().UTC(), Action: audit.ActionExecute, Verb: verb, Outcome: "denied",
		SourceIP: rc.ip, UserAgent: rc.ua, RequestID: rc.id, Actor: "anonymous",
		Detail: map[string]any{"route": ep.Pattern, "method": ep.Method, "reason": reason}}
	if p := rc.principal; p != nil {
		e.Actor, e.ActorRole, e.ClientID = p.Subject, string(p.Role), p.ClientID
	}
	err := s.d.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_, err := audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		s.d.Logger.Error("audit of refusal failed", "request_id", rc.id, "error", err.Error())
	}
}

// deny answers 403 for a patient-level policy decision, audited.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, rc *reqCtx, verb string, d access.Decision) {
	ep := Endpoint{Pattern: rc.route, Method: r.Method}
	s.auditDenied(r.Context(), rc, ep, rc.tenant, verb, d.Reason)
	writeError(w, r, http.StatusForbidden, "forbidden", clientDenyMessage(d.Reason))
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func topFrame(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.Contains(l, "panic(") && i+2 < len(lines) {
			return strings.TrimSpace(lines[i+2])
		}
	}
	return ""
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.d.DB.Pool().Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "component": "database"})
		return
	}
	if err := s.d.Sealer.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "component": "key provider"})
		return
	}
	if s.d.Ready != nil {
		if err := s.d.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "component": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
