package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/store"
)

// Rule packs per tenant (tables rule_packs, rule_cases and
// rule_pack_activations, migrations/0003_rules.sql).
//
// A pack version is uploaded (Publish), stored immutably with the exact bytes
// Compile read, and activated per tenant (Activate) only if it compiles, its
// stored bytes still hash to its recorded sha256, it accepts the tenant's rule
// configuration and it passes every golden case: the tenant's own
// (rule_cases) and the default ones shipped with Vigil (rules.DefaultCasesFS).
// Publishing and activating are audited (rules.publish, rules.activate), and
// so are refusals.
//
// A tenant with no activation uses the embedded default pack. A tenant whose
// active pack cannot be compiled (a newer Vigil refuses an old pack, or its
// stored bytes no longer match the recorded hash) gets an *ActivePackError for
// every job: the job fails loudly and is retried; it never falls back to
// another pack, because a decision must be made with the rules the tenant
// chose. PackStore.Preload reports such tenants at startup.

// Sentinel errors of the pack store.
var (
	// ErrPackExists: a different pack was already published under this version.
	ErrPackExists = errors.New("triage: rule pack version already published with different content")
	// ErrPackFiles: the upload is not a set of pack files (names, encoding).
	ErrPackFiles = errors.New("triage: invalid rule pack files")
	// ErrPackIntegrity: a stored pack no longer hashes to its recorded sha256.
	ErrPackIntegrity = errors.New("triage: stored rule pack does not match its recorded sha256")
	// ErrCases: golden cases could not be read.
	ErrCases = errors.New("triage: invalid golden cases")
)

// ActivationError refuses an activation: the pack failed golden cases or
// does not accept the tenant's rule configuration. It names case names and
// rule ids only.
type ActivationError struct {
	Version string
	Reason  string             // why, without patient data
	Failed  []rules.CaseResult // failing golden cases (synthetic data)
	Passed  int                // cases that passed
	Total   int                // cases run
}

func (e *ActivationError) Error() string {
	if len(e.Failed) == 0 {
		return fmt.Sprintf("triage: rule pack %s not activated: %s", e.Version, e.Reason)
	}
	names := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		names[i] = f.Name
	}
	return fmt.Sprintf("triage: rule pack %s not activated: %d of %d golden cases fail: %s", e.Version, len(e.Failed), e.Total, strings.Join(names, ", "))
}

// ActivePackError is returned by Active when the tenant's active pack cannot
// be used. The tenant's jobs fail with it until a good version is activated.
type ActivePackError struct {
	TenantID, Version string
	Err               error // *rules.CompileErrors, ErrPackIntegrity or a database error
}

func (e *ActivePackError) Error() string {
	return fmt.Sprintf("triage: tenant %s: active rule pack %s unusable: %v", e.TenantID, e.Version, e.Err)
}

func (e *ActivePackError) Unwrap() error { return e.Err }

// PackVersion describes one stored pack version.
type PackVersion struct {
	Version     string       `json:"version"`
	SHA256      string       `json:"sha256"`
	Name        string       `json:"name"`
	Files       []string     `json:"files"`
	PublishedBy string       `json:"published_by"`
	PublishedAt time.Time    `json:"published_at"`
	Checks      PackChecks   `json:"checks"`
	Active      bool         `json:"active"`
	Activations []Activation `json:"activations,omitempty"`
	// Duplicate: Publish found these exact bytes already stored under this version.
	Duplicate bool `json:"duplicate,omitempty"`
}

// PackChecks are the results recorded when a version was published.
type PackChecks struct {
	Lint        string   `json:"lint"` // "ok"
	CasesPassed int      `json:"cases_passed"`
	CasesTotal  int      `json:"cases_total"`
	CasesFailed []string `json:"cases_failed,omitempty"`
}

// Activation is one row of a tenant's activation log.
type Activation struct {
	Version     string    `json:"version"`
	SHA256      string    `json:"sha256"`
	ActivatedBy string    `json:"activated_by"`
	ActivatedAt time.Time `json:"activated_at"`
	CasesPassed int       `json:"cases_passed"`
	CasesTotal  int       `json:"cases_total"`
	Previous    string    `json:"previous,omitempty"` // version active before ("" = default pack)
}

// PackStoreConfig tunes a PackStore. Zero values take the defaults noted.
type PackStoreConfig struct {
	// Default is the pack of tenants with no activation (default:
	// rules.DefaultPack(), compiled on first use).
	Default *rules.Pack
	// Recheck is how long Active trusts a tenant's cached active version before
	// reading it again. Zero (the default) reads it on every call: one indexed
	// SELECT, so an activation applies to the very next job on every worker.
	Recheck time.Duration
	// CacheSize bounds the compiled versions kept in memory (default 64).
	CacheSize int
	Now       func() time.Time
	Logger    *slog.Logger
}

// PackStore is the database-backed PackProvider. Safe for concurrent use.
type PackStore struct {
	db  *store.DB
	cfg PackStoreConfig

	defOnce sync.Once
	def     *rules.Pack
	defErr  error

	mu       sync.Mutex
	active   map[string]activeEntry // tenant → what Active last served
	compiled map[packKey]*rules.Pack
}

type activeEntry struct {
	version, sha string
	pack         *rules.Pack
	checked      time.Time
}

type packKey struct{ tenant, version, sha string }

// NewPackStore returns a PackStore over db.
func NewPackStore(db *store.DB, cfg PackStoreConfig) (*PackStore, error) {
	if db == nil {
		return nil, errors.New("triage: pack store needs a DB")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &PackStore{db: db, cfg: cfg, active: map[string]activeEntry{}, compiled: map[packKey]*rules.Pack{}}, nil
}

// Default is the pack of tenants with no activation. It fails only if the
// embedded default pack does not compile (app startup compiles it first).
func (s *PackStore) Default() (*rules.Pack, error) {
	s.defOnce.Do(func() {
		if s.def = s.cfg.Default; s.def == nil {
			if s.def, s.defErr = rules.DefaultPack(); s.defErr != nil {
				s.defErr = fmt.Errorf("triage: default rule pack: %w", s.defErr)
			}
		}
	})
	return s.def, s.defErr
}

// Active implements PackProvider: the tenant's active pack, or the default
// pack when none was ever activated. An unusable active pack gives an
// *ActivePackError, never another pack.
func (s *PackStore) Active(ctx context.Context, tenantID string) (*rules.Pack, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	e, ok := s.active[tenantID]
	s.mu.Unlock()
	if ok && s.cfg.Recheck > 0 && now.Sub(e.checked) < s.cfg.Recheck {
		return e.pack, nil
	}
	var pack *rules.Pack
	var act *Activation
	err := s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		if act, err = activeVersion(ctx, tx); err != nil || act == nil {
			return err
		}
		if ok && e.version == act.Version && e.sha == act.SHA256 {
			pack = e.pack
			return nil
		}
		pack, err = s.load(ctx, tx, tenantID, act.Version, act.SHA256)
		return err
	})
	if err != nil && act == nil {
		return nil, err // reading the activation failed (database): retried like any job error
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "active rule pack unusable; tenant's jobs fail until a good version is activated",
			"tenant_id", tenantID, "rule_pack", act.Version, "error", err.Error())
		return nil, &ActivePackError{TenantID: tenantID, Version: act.Version, Err: err}
	}
	if act == nil {
		if pack, err = s.Default(); err != nil {
			return nil, err
		}
		act = &Activation{Version: pack.Version(), SHA256: pack.SHA256()}
	}
	s.mu.Lock()
	s.active[tenantID] = activeEntry{version: act.Version, sha: act.SHA256, pack: pack, checked: now}
	s.mu.Unlock()
	return pack, nil
}

// Preload compiles every tenant's active pack (startup). It returns every
// tenant whose active pack is unusable, each as an *ActivePackError naming
// the version and the compile errors (file, rule, line, column).
func (s *PackStore) Preload(ctx context.Context) error {
	var tenants []*store.Tenant
	if err := s.db.Global(ctx, func(tx pgx.Tx) error {
		var err error
		tenants, err = store.ListTenants(ctx, tx)
		return err
	}); err != nil {
		return fmt.Errorf("triage: preload rule packs: %w", err)
	}
	var errs []error
	for _, t := range tenants {
		if _, err := s.Active(ctx, t.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Resolve returns the pack a decision recorded: the default pack when info
// names it, else the tenant's stored version, which must still hash to
// info.SHA256. Used by Replay, never by the pipeline.
func (s *PackStore) Resolve(ctx context.Context, tx pgx.Tx, tenantID string, info PackInfo) (*rules.Pack, error) {
	d, err := s.Default()
	if err != nil {
		return nil, err
	}
	if info.SHA256 == d.SHA256() && info.Version == d.Version() {
		return d, nil
	}
	return s.load(ctx, tx, tenantID, info.Version, info.SHA256)
}

// Version compiles a stored version (for replay and tools).
func (s *PackStore) Version(ctx context.Context, tenantID, version string) (*rules.Pack, error) {
	var p *rules.Pack
	err := s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		p, err = s.load(ctx, tx, tenantID, version, "")
		return err
	})
	return p, err
}

// load compiles tenantID's stored version (cached). wantSHA, when set, must
// equal the stored sha256; the compiled bytes must always hash to it.
func (s *PackStore) load(ctx context.Context, tx pgx.Tx, tenantID, version, wantSHA string) (*rules.Pack, error) {
	if wantSHA != "" {
		s.mu.Lock()
		p := s.compiled[packKey{tenantID, version, wantSHA}]
		s.mu.Unlock()
		if p != nil {
			return p, nil
		}
	}
	files, sha, err := loadPackFiles(ctx, tx, version)
	if err != nil {
		return nil, err
	}
	if wantSHA != "" && sha != wantSHA {
		return nil, fmt.Errorf("rule pack %s: recorded sha256 %s, stored %s: %w", version, short(wantSHA), short(sha), ErrPackIntegrity)
	}
	p, err := compileFiles(files)
	if err != nil {
		return nil, err // *rules.CompileErrors as Compile returned them
	}
	if p.SHA256() != sha || p.Version() != version {
		return nil, fmt.Errorf("rule pack %s: stored files hash to %s, recorded %s: %w", version, short(p.SHA256()), short(sha), ErrPackIntegrity)
	}
	s.mu.Lock()
	if len(s.compiled) >= s.cfg.CacheSize {
		for k := range s.compiled { // evict an arbitrary entry: versions are cheap to recompile
			delete(s.compiled, k)
			break
		}
	}
	s.compiled[packKey{tenantID, version, sha}] = p
	s.mu.Unlock()
	return p, nil
}

func loadPackFiles(ctx context.Context, tx pgx.Tx, version string) (map[string][]byte, string, error) {
	var raw map[string]string
	var sha string
	err := tx.QueryRow(ctx, `SELECT files, sha256 FROM rule_packs WHERE version = $1`, version).Scan(&raw, &sha)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("triage: rule pack %s: %w", version, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("triage: load rule pack: %w", err)
	}
	files := make(map[string][]byte, len(raw))
	for n, c := range raw {
		files[n] = []byte(c)
	}
	return files, sha, nil
}

// PackFileNames reports whether name is a file Compile reads.
func PackFileName(name string) bool {
	return name == "pack.yaml" || name == "analytes.yaml" || name == "lexicon.yaml" || strings.HasSuffix(name, ".rules.yaml") && len(name) > len(".rules.yaml")
}

// checkPackFiles refuses names Compile would not read (so the stored bytes
// are exactly what the hash covers) and content jsonb cannot hold exactly.
func checkPackFiles(files map[string][]byte) error {
	if len(files) == 0 {
		return fmt.Errorf("%w: no files", ErrPackFiles)
	}
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if !PackFileName(n) {
			return fmt.Errorf("%w: %q is not a pack file (pack.yaml, analytes.yaml, lexicon.yaml, *.rules.yaml at the pack root)", ErrPackFiles, n)
		}
		if !utf8.Valid(files[n]) || slices.Contains(files[n], 0) {
			return fmt.Errorf("%w: %s is not UTF-8 text", ErrPackFiles, n)
		}
	}
	return nil
}

func compileFiles(files map[string][]byte) (*rules.Pack, error) {
	m := fstest.MapFS{}
	for n, b := range files {
		m[n] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	p, err := rules.Compile(m)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Publish compiles files as a pack (all or nothing: a bad pack returns the
// rules.CompileErrors from rules.Compile unchanged and stores nothing),
// stores it immutably under its pack.yaml version, records the golden-case
// results and audits rules.publish. Publishing the same bytes again is a
// no-op (Duplicate); other bytes under a published version give ErrPackExists.
func (s *PackStore) Publish(ctx context.Context, tenantID string, files map[string][]byte, actor Actor) (*PackVersion, error) {
	now := s.cfg.Now().UTC()
	if err := checkPackFiles(files); err != nil {
		s.auditRefusal(ctx, tenantID, actor, now, "rules.publish", map[string]any{"reason": "invalid files"})
		return nil, err
	}
	p, err := compileFiles(files)
	if err != nil {
		var ce rules.CompileErrors
		detail := map[string]any{"reason": "compile"}
		if errors.As(err, &ce) {
			detail["errors"] = len(ce)
		}
		s.auditRefusal(ctx, tenantID, actor, now, "rules.publish", detail)
		return nil, err
	}
	if !validVersion(p.Version()) {
		s.auditRefusal(ctx, tenantID, actor, now, "rules.publish", map[string]any{"reason": "version"})
		return nil, fmt.Errorf("%w: pack.yaml version %q: want letters, digits, '.', '_', '+' or '-' (at most 100)", ErrPackFiles, p.Version())
	}
	content := make(map[string]string, len(files))
	names := make([]string, 0, len(files))
	for n, b := range files {
		content[n] = string(b)
		names = append(names, n)
	}
	slices.Sort(names)
	pv := &PackVersion{Version: p.Version(), SHA256: p.SHA256(), Name: p.Name(), Files: names, PublishedBy: actor.Subject, PublishedAt: now}
	err = s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		cases, err := tenantCases(ctx, tx)
		if err != nil {
			return err
		}
		res := rules.RunCases(p, cases)
		pv.Checks = PackChecks{Lint: "ok", CasesTotal: len(res)}
		for _, r := range res {
			if r.Pass {
				pv.Checks.CasesPassed++
			} else {
				pv.Checks.CasesFailed = append(pv.Checks.CasesFailed, r.Name)
			}
		}
		checks, err := json.Marshal(pv.Checks)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO rule_packs (tenant_id, version, sha256, name, files, checks, published_by, published_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
			tenantID, pv.Version, pv.SHA256, pv.Name, content, checks, actor.Subject, now)
		if err != nil {
			return fmt.Errorf("triage: store rule pack: %w", err)
		}
		if tag.RowsAffected() == 0 {
			var sha string
			var at time.Time
			var by string
			err := tx.QueryRow(ctx, `SELECT sha256, published_at, published_by FROM rule_packs WHERE version = $1`, pv.Version).Scan(&sha, &at, &by)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && sha != pv.SHA256) {
				// Same version with other bytes (or these bytes under another version).
				return ErrPackExists
			}
			if err != nil {
				return err
			}
			pv.Duplicate, pv.PublishedAt, pv.PublishedBy = true, at, by
		}
		e := actor.event(tenantID, now, audit.ActionCreate, "rules.publish", audit.OutcomeSuccess)
		e.Detail = map[string]any{"rule_pack": pv.Version, "rule_pack_sha256": pv.SHA256, "files": len(names),
			"cases_passed": pv.Checks.CasesPassed, "cases_total": pv.Checks.CasesTotal, "duplicate": pv.Duplicate}
		_, err = audit.Append(ctx, tx, e)
		return err
	})
	if errors.Is(err, ErrPackExists) {
		s.auditRefusal(ctx, tenantID, actor, now, "rules.publish", map[string]any{"reason": "version exists", "rule_pack": pv.Version, "rule_pack_sha256": pv.SHA256})
		return nil, fmt.Errorf("rule pack %s: %w", pv.Version, ErrPackExists)
	}
	if err != nil {
		return nil, err
	}
	return pv, nil
}

func validVersion(v string) bool {
	if v == "" || len(v) > 100 {
		return false
	}
	for i, r := range v {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '.' || r == '_' || r == '+' || r == '-'
		}
		if !ok {
			return false
		}
	}
	return true
}

// Activate makes version the tenant's active pack. It refuses (an
// *ActivationError, audited) unless the stored pack compiles, still hashes to
// its recorded sha256, accepts the tenant's rule configuration and passes
// every golden case (the tenant's and the default ones). Activating is
// audited as rules.activate with the case counts; workers pick the new
// version up on their next job.
func (s *PackStore) Activate(ctx context.Context, tenantID, version string, actor Actor) (*Activation, error) {
	now := s.cfg.Now().UTC()
	var act *Activation
	var refused error
	err := s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		// One activation at a time per tenant.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('vigil.rules.activate'), hashtext($1))`, tenantID); err != nil {
			return err
		}
		prev, err := activeVersion(ctx, tx)
		if err != nil {
			return err
		}
		p, err := s.load(ctx, tx, tenantID, version, "")
		if err != nil {
			return err
		}
		refuse := func(ae *ActivationError) error {
			refused = ae
			e := actor.event(tenantID, now, audit.ActionExecute, "rules.activate", audit.OutcomeFailure)
			failed := make([]string, len(ae.Failed))
			for i, f := range ae.Failed {
				failed[i] = f.Name
			}
			e.Detail = map[string]any{"rule_pack": version, "rule_pack_sha256": p.SHA256(), "reason": ae.Reason,
				"cases_passed": ae.Passed, "cases_total": ae.Total, "cases_failed": failed}
			_, err := audit.Append(ctx, tx, e)
			return err
		}
		t, err := store.GetTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		tc, err := tenantRules(t)
		if err != nil {
			return refuse(&ActivationError{Version: version, Reason: "the tenant's rules configuration is not valid JSON"})
		}
		if err := p.ValidateTenant(tc); err != nil {
			return refuse(&ActivationError{Version: version, Reason: "the pack does not accept the tenant's rules configuration: " + err.Error()})
		}
		cases, err := tenantCases(ctx, tx)
		if err != nil {
			return err
		}
		res := rules.RunCases(p, cases)
		ae := &ActivationError{Version: version, Total: len(res)}
		for _, r := range res {
			if r.Pass {
				ae.Passed++
			} else {
				ae.Failed = append(ae.Failed, r)
			}
		}
		if len(ae.Failed) > 0 {
			ae.Reason = "golden cases fail"
			return refuse(ae)
		}
		act = &Activation{Version: version, SHA256: p.SHA256(), ActivatedBy: actor.Subject, ActivatedAt: now,
			CasesPassed: ae.Passed, CasesTotal: ae.Total}
		if prev != nil {
			act.Previous = prev.Version
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rule_pack_activations (tenant_id, version, sha256, activated_by, activated_at, cases_passed, cases_total)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, tenantID, version, act.SHA256, actor.Subject, now, act.CasesPassed, act.CasesTotal); err != nil {
			return fmt.Errorf("triage: record activation: %w", err)
		}
		e := actor.event(tenantID, now, audit.ActionUpdate, "rules.activate", audit.OutcomeSuccess)
		e.Detail = map[string]any{"rule_pack": version, "rule_pack_sha256": act.SHA256, "previous": act.Previous,
			"cases_passed": act.CasesPassed, "cases_total": act.CasesTotal}
		_, err = audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		var ce rules.CompileErrors
		if errors.As(err, &ce) || errors.Is(err, ErrPackIntegrity) || errors.Is(err, ErrNotFound) {
			s.auditRefusal(ctx, tenantID, actor, now, "rules.activate", map[string]any{"rule_pack": version, "reason": refusalReason(err)})
		}
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	return act, nil
}

func refusalReason(err error) string {
	var ce rules.CompileErrors
	switch {
	case errors.As(err, &ce):
		return "compile"
	case errors.Is(err, ErrPackIntegrity):
		return "integrity"
	case errors.Is(err, ErrNotFound):
		return "not found"
	}
	return "error"
}

// auditRefusal records a refused publish or activation in its own
// transaction (the refused work wrote nothing). A failed audit write is logged.
func (s *PackStore) auditRefusal(ctx context.Context, tenantID string, actor Actor, at time.Time, verb string, detail map[string]any) {
	err := s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		action := audit.ActionCreate
		if verb == "rules.activate" {
			action = audit.ActionExecute
		}
		e := actor.event(tenantID, at, action, verb, audit.OutcomeFailure)
		e.Detail = detail
		_, err := audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "audit of refused rule-pack change failed", "tenant_id", tenantID, "verb", verb, "error", err.Error())
	}
}

// activeVersion is the tenant's latest activation, nil when none.
func activeVersion(ctx context.Context, tx pgx.Tx) (*Activation, error) {
	var a Activation
	err := tx.QueryRow(ctx, `SELECT version, sha256, activated_by, activated_at, cases_passed, cases_total
		FROM rule_pack_activations ORDER BY id DESC LIMIT 1`).Scan(&a.Version, &a.SHA256, &a.ActivatedBy, &a.ActivatedAt, &a.CasesPassed, &a.CasesTotal)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("triage: active rule pack: %w", err)
	}
	return &a, nil
}

// ActiveVersion reports the tenant's active version ("" and the default
// pack's version when none was activated).
func (s *PackStore) ActiveVersion(ctx context.Context, tenantID string) (*Activation, error) {
	var a *Activation
	err := s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		a, err = activeVersion(ctx, tx)
		return err
	})
	return a, err
}

// List returns the tenant's stored versions, newest first, with their
// activations; Active marks the one in force.
func (s *PackStore) List(ctx context.Context, tenantID string) ([]PackVersion, error) {
	var out []PackVersion
	err := s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT version, sha256, name, (SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM jsonb_object_keys(files) k),
			published_by, published_at, checks FROM rule_packs ORDER BY published_at DESC, version DESC`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v PackVersion
			var checks []byte
			if err := rows.Scan(&v.Version, &v.SHA256, &v.Name, &v.Files, &v.PublishedBy, &v.PublishedAt, &checks); err != nil {
				rows.Close()
				return err
			}
			_ = json.Unmarshal(checks, &v.Checks)
			out = append(out, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		acts, err := tx.Query(ctx, `SELECT version, sha256, activated_by, activated_at, cases_passed, cases_total FROM rule_pack_activations ORDER BY id`)
		if err != nil {
			return err
		}
		var last string
		for acts.Next() {
			var a Activation
			if err := acts.Scan(&a.Version, &a.SHA256, &a.ActivatedBy, &a.ActivatedAt, &a.CasesPassed, &a.CasesTotal); err != nil {
				acts.Close()
				return err
			}
			a.Previous, last = last, a.Version
			for i := range out {
				if out[i].Version == a.Version {
					out[i].Activations = append(out[i].Activations, a)
				}
			}
		}
		acts.Close()
		if err := acts.Err(); err != nil {
			return err
		}
		for i := range out {
			out[i].Active = out[i].Version == last
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("triage: list rule packs: %w", err)
	}
	return out, nil
}

// ImportCases stores golden cases for the tenant (by name: a case with the
// same name is replaced), after checking each parses as a rules.LoadCases
// case file. Names are the file names without ".json". Audited as
// rules.cases_import.
func (s *PackStore) ImportCases(ctx context.Context, tenantID string, files map[string][]byte, actor Actor) (int, error) {
	if len(files) == 0 {
		return 0, fmt.Errorf("%w: no case files", ErrCases)
	}
	m := fstest.MapFS{}
	for n, b := range files {
		if !strings.HasSuffix(n, ".json") || strings.Contains(n, "/") || !validCaseName(strings.TrimSuffix(n, ".json")) {
			return 0, fmt.Errorf("%w: %q: want NAME.json with letters, digits, '.', '_' or '-'", ErrCases, n)
		}
		m[n] = &fstest.MapFile{Data: b}
	}
	if _, err := rules.LoadCases(m, "."); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCases, err)
	}
	now := s.cfg.Now().UTC()
	names := slices.Sorted(maps.Keys(files))
	err := s.db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		for _, n := range names {
			if _, err := tx.Exec(ctx, `INSERT INTO rule_cases (tenant_id, name, body, added_by, updated_at) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (tenant_id, name) DO UPDATE SET body = excluded.body, added_by = excluded.added_by, updated_at = excluded.updated_at`,
				tenantID, strings.TrimSuffix(n, ".json"), string(files[n]), actor.Subject, now); err != nil {
				return fmt.Errorf("triage: store golden case: %w", err)
			}
		}
		e := actor.event(tenantID, now, audit.ActionCreate, "rules.cases_import", audit.OutcomeSuccess)
		e.Detail = map[string]any{"cases": len(names)}
		_, err := audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(names), nil
}

func validCaseName(n string) bool {
	if n == "" || len(n) > 200 {
		return false
	}
	for i, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '.' || r == '_' || r == '-'
		}
		if !ok {
			return false
		}
	}
	return true
}

// tenantCases are the golden cases a pack must pass for the tenant: the
// default cases shipped with Vigil (named "default/…") and the tenant's own
// ("tenant/…").
func tenantCases(ctx context.Context, tx pgx.Tx) ([]rules.Case, error) {
	def, err := rules.LoadCases(rules.DefaultCasesFS(), ".")
	if err != nil {
		return nil, fmt.Errorf("%w: default cases: %w", ErrCases, err)
	}
	for i := range def {
		def[i].Name = "default/" + def[i].Name
	}
	rows, err := tx.Query(ctx, `SELECT name, body FROM rule_cases ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("triage: load golden cases: %w", err)
	}
	m := fstest.MapFS{}
	for rows.Next() {
		var n string
		var b []byte
		if err := rows.Scan(&n, &b); err != nil {
			rows.Close()
			return nil, fmt.Errorf("triage: load golden cases: %w", err)
		}
		m[n+".json"] = &fstest.MapFile{Data: b}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("triage: load golden cases: %w", err)
	}
	var own []rules.Case
	if len(m) > 0 {
		if own, err = rules.LoadCases(fs.FS(m), "."); err != nil {
			return nil, fmt.Errorf("%w: tenant cases: %w", ErrCases, err)
		}
	}
	for i := range own {
		own[i].Name = "tenant/" + own[i].Name
	}
	return append(def, own...), nil
}
