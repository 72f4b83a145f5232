package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/store"
)

// DetectorEnv is what a detector rule sees: one actor's activity in the scan
// window, their baseline, and the configured thresholds T.
type DetectorEnv struct {
	Actor string `expr:"actor"`
	Role  string `expr:"role"`
	// Count is the actor's events in the window.
	Count float64 `expr:"count"`
	// Baseline is the actor's mean events per window over the baseline period before it.
	Baseline float64 `expr:"baseline"`
	// Patients is the number of distinct patients the actor touched.
	Patients float64 `expr:"patients"`
	// Reads is the actor's read events; OffHoursReads those outside working hours.
	Reads         float64 `expr:"reads"`
	OffHoursReads float64 `expr:"offhours_reads"`
	// Denied counts denied or failed authorisations (outcome denied, or verb auth.deny).
	Denied float64 `expr:"denied"`
	// BreakGlass counts events that used break-the-glass.
	BreakGlass float64 `expr:"break_glass"`
	// NoCare counts distinct patients accessed with no care relationship
	// (detail care_team = false, break-the-glass aside).
	NoCare float64 `expr:"no_care"`
	// Exported is the number of records the actor exported (sum of detail count on audit.export and *.export verbs).
	Exported float64 `expr:"exported"`
	// T holds the configured thresholds.
	T map[string]float64 `expr:"T"`
}

// DetectorRule is one anomaly rule: an expr expression over DetectorEnv that
// raises an alert when true.
type DetectorRule struct {
	ID       string // stable id, e.g. "volume_spike"
	Severity string // "low" | "medium" | "high"
	When     string // boolean expr, e.g. `count >= T.volume_min && count > baseline * T.volume_factor`
	Value    string // numeric expr reported with the alert (default "count")
}

// DetectorConfig configures ScanAnomalies.
type DetectorConfig struct {
	// Window is the scanned period ending at now, aligned to multiples of
	// itself so re-runs are idempotent (default 1h).
	Window time.Duration
	// Baseline is how far back before the window a user's normal volume is
	// measured (default 14 days).
	Baseline time.Duration
	// OffHoursStart and OffHoursEnd bound off hours in TimeZone (defaults 20 and 7: 20:00–07:00).
	OffHoursStart, OffHoursEnd int
	// TimeZone is an IANA name for off hours (default "UTC").
	TimeZone string
	// Rules default to DefaultDetectorRules.
	Rules []DetectorRule
	// Thresholds are T in the rules; DefaultThresholds fill missing keys.
	Thresholds map[string]float64
}

// DefaultThresholds are the thresholds the default rules use.
func DefaultThresholds() map[string]float64 {
	return map[string]float64{
		"volume_min":     50,   // events in a window before a spike is considered
		"volume_factor":  5,    // times the user's own baseline
		"no_care_min":    1,    // patients without a care relationship
		"offhours_reads": 20,   // reads outside working hours
		"auth_failures":  5,    // denied / failed authorisations
		"break_glass":    1,    // break-the-glass uses
		"export_records": 1000, // records exported
	}
}

// DefaultDetectorRules are the six detectors of issue 5.
func DefaultDetectorRules() []DetectorRule {
	return []DetectorRule{
		{ID: "volume_spike", Severity: "medium", When: `count >= T.volume_min && count > baseline * T.volume_factor`, Value: "count"},
		{ID: "no_care_relationship", Severity: "high", When: `no_care >= T.no_care_min`, Value: "no_care"},
		{ID: "offhours_bulk_reads", Severity: "medium", When: `offhours_reads >= T.offhours_reads`, Value: "offhours_reads"},
		{ID: "auth_failures", Severity: "medium", When: `denied >= T.auth_failures`, Value: "denied"},
		{ID: "break_glass", Severity: "high", When: `break_glass >= T.break_glass`, Value: "break_glass"},
		{ID: "large_export", Severity: "high", When: `exported >= T.export_records`, Value: "exported"},
	}
}

// WithDefaults returns c with zero fields set to their defaults.
func (c DetectorConfig) WithDefaults() DetectorConfig {
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	if c.Baseline <= 0 {
		c.Baseline = 14 * 24 * time.Hour
	}
	if c.OffHoursStart == 0 && c.OffHoursEnd == 0 {
		c.OffHoursStart, c.OffHoursEnd = 20, 7
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if c.Rules == nil {
		c.Rules = DefaultDetectorRules()
	}
	t := DefaultThresholds()
	for k, v := range c.Thresholds {
		t[k] = v
	}
	c.Thresholds = t
	return c
}

// Alert is a stored anomaly alert.
type Alert struct {
	ID          string
	TenantID    string
	Detector    string
	Severity    string
	Actor       string
	PatientRef  string
	WindowStart time.Time
	WindowEnd   time.Time
	Value       float64
	Detail      map[string]any
	CreatedAt   time.Time
}

// Detectors are compiled detector rules. Safe for concurrent use.
type Detectors struct {
	cfg   DetectorConfig
	rules []compiledRule
}

type compiledRule struct {
	DetectorRule
	when, value *vm.Program
}

// NewDetectors compiles cfg's rules; a bad rule is an error naming it.
func NewDetectors(cfg DetectorConfig) (*Detectors, error) {
	cfg = cfg.WithDefaults()
	if _, err := time.LoadLocation(cfg.TimeZone); err != nil {
		return nil, fmt.Errorf("audit: detectors: time zone: %w", err)
	}
	d := &Detectors{cfg: cfg}
	for _, r := range cfg.Rules {
		if r.ID == "" {
			return nil, fmt.Errorf("audit: detectors: rule without id")
		}
		if r.Value == "" {
			r.Value = "count"
		}
		if r.Severity == "" {
			r.Severity = "medium"
		}
		when, err := expr.Compile(r.When, expr.Env(DetectorEnv{}), expr.AsBool(), expr.MaxNodes(200))
		if err != nil {
			return nil, fmt.Errorf("audit: detector %s: %w", r.ID, err)
		}
		value, err := expr.Compile(r.Value, expr.Env(DetectorEnv{}), expr.AsFloat64(), expr.MaxNodes(200))
		if err != nil {
			return nil, fmt.Errorf("audit: detector %s value: %w", r.ID, err)
		}
		d.rules = append(d.rules, compiledRule{DetectorRule: r, when: when, value: value})
	}
	return d, nil
}

// ScanAnomalies compiles cfg and scans every tenant (see Detectors.Scan).
// It is what the periodic anomaly job runs.
func ScanAnomalies(ctx context.Context, db *store.DB, cfg DetectorConfig, now time.Time) ([]Alert, error) {
	d, err := NewDetectors(cfg)
	if err != nil {
		return nil, err
	}
	return d.Scan(ctx, db, now)
}

// Scan runs the detectors over each tenant's last complete window before
// now, stores new alerts and audits each ("audit.alert"). Re-running for the
// same window raises nothing twice.
func (d *Detectors) Scan(ctx context.Context, db *store.DB, now time.Time) ([]Alert, error) {
	tenants, err := listTenants(ctx, db.Pool())
	if err != nil {
		return nil, err
	}
	var out []Alert
	for _, t := range tenants {
		var alerts []Alert
		err := db.InTenant(ctx, t, func(tx pgx.Tx) error {
			var err error
			alerts, err = d.ScanTenant(ctx, tx, t, now)
			return err
		})
		if err != nil {
			return out, err
		}
		out = append(out, alerts...)
	}
	return out, nil
}

// ScanTenant runs the detectors for one tenant inside tx (scoped to it).
func (d *Detectors) ScanTenant(ctx context.Context, tx pgx.Tx, tenant string, now time.Time) ([]Alert, error) {
	end := now.UTC().Truncate(d.cfg.Window)
	start := end.Add(-d.cfg.Window)
	envs, err := d.aggregate(ctx, tx, tenant, start, end)
	if err != nil {
		return nil, fmt.Errorf("audit: anomaly scan tenant %s: %w", tenant, err)
	}
	var out []Alert
	for _, env := range envs {
		for _, r := range d.rules {
			hit, err := expr.Run(r.when, env)
			if err != nil {
				return out, fmt.Errorf("audit: detector %s: %w", r.ID, err)
			}
			if hit != true {
				continue
			}
			v, err := expr.Run(r.value, env)
			if err != nil {
				return out, fmt.Errorf("audit: detector %s value: %w", r.ID, err)
			}
			a := Alert{TenantID: tenant, Detector: r.ID, Severity: r.Severity, Actor: env.Actor, WindowStart: start,
				WindowEnd: end, Value: v.(float64), Detail: map[string]any{
					"count": env.Count, "baseline": env.Baseline, "patients": env.Patients, "reads": env.Reads,
					"offhours_reads": env.OffHoursReads, "denied": env.Denied, "break_glass": env.BreakGlass,
					"no_care": env.NoCare, "exported": env.Exported, "role": env.Role}}
			ok, err := insertAlert(ctx, tx, &a, now)
			if err != nil {
				return out, err
			}
			if ok {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func (d *Detectors) aggregate(ctx context.Context, tx pgx.Tx, tenant string, start, end time.Time) ([]DetectorEnv, error) {
	windows := float64(d.cfg.Baseline) / float64(d.cfg.Window)
	rows, err := tx.Query(ctx, `
WITH w AS (
    SELECT * FROM audit_events WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3
), a AS (
    SELECT actor,
           max(actor_role) AS role,
           count(*) AS n,
           count(DISTINCT patient_ref) FILTER (WHERE patient_ref <> '') AS patients,
           count(*) FILTER (WHERE action = 'R') AS reads,
           count(*) FILTER (WHERE action = 'R' AND (
               CASE WHEN $5::int > $6::int
                    THEN extract(hour FROM occurred_at AT TIME ZONE $4) >= $5 OR extract(hour FROM occurred_at AT TIME ZONE $4) < $6
                    ELSE extract(hour FROM occurred_at AT TIME ZONE $4) >= $5 AND extract(hour FROM occurred_at AT TIME ZONE $4) < $6 END)) AS offhours,
           count(*) FILTER (WHERE outcome = 'denied' OR verb = 'auth.deny') AS denied,
           count(*) FILTER (WHERE detail->>'via' = 'break_glass' OR detail->>'break_glass' = 'true') AS break_glass,
           count(DISTINCT patient_ref) FILTER (WHERE patient_ref <> '' AND detail->>'care_team' = 'false'
               AND coalesce(detail->>'via', '') <> 'break_glass' AND coalesce(detail->>'break_glass', '') <> 'true') AS no_care,
           coalesce(sum(CASE WHEN (verb = 'audit.export' OR verb LIKE '%.export') AND jsonb_typeof(detail->'count') = 'number'
                             THEN (detail->>'count')::numeric END), 0) AS exported
    FROM w GROUP BY actor
)
SELECT a.actor, a.role, a.n, a.patients, a.reads, a.offhours, a.denied, a.break_glass, a.no_care, a.exported::float8,
       (SELECT count(*) FROM audit_events b WHERE b.tenant_id = $1 AND b.actor = a.actor
            AND b.occurred_at >= $2::timestamptz - make_interval(secs => $7::float8) AND b.occurred_at < $2) AS base
FROM a ORDER BY a.actor`,
		tenant, start, end, d.cfg.TimeZone, d.cfg.OffHoursStart, d.cfg.OffHoursEnd, d.cfg.Baseline.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DetectorEnv, error) {
		var e DetectorEnv
		var n, patients, reads, off, denied, bg, noCare, base int64
		err := r.Scan(&e.Actor, &e.Role, &n, &patients, &reads, &off, &denied, &bg, &noCare, &e.Exported, &base)
		e.Count, e.Patients, e.Reads, e.OffHoursReads = float64(n), float64(patients), float64(reads), float64(off)
		e.Denied, e.BreakGlass, e.NoCare = float64(denied), float64(bg), float64(noCare)
		e.Baseline = float64(base) / windows
		e.T = d.cfg.Thresholds
		return e, err
	})
}

// RaiseAlert stores an alert raised by an event itself rather than by the
// periodic scan (a break-the-glass grant), and audits it, in tx. It reports
// false when the same alert (detector, actor, patient, window start) exists.
func RaiseAlert(ctx context.Context, tx pgx.Tx, a Alert, now time.Time) (bool, error) {
	if a.WindowStart.IsZero() {
		a.WindowStart, a.WindowEnd = now, now
	}
	return insertAlert(ctx, tx, &a, now)
}

// insertAlert stores a and audits it; false if this window's alert exists.
func insertAlert(ctx context.Context, tx pgx.Tx, a *Alert, now time.Time) (bool, error) {
	detail, err := json.Marshal(a.Detail)
	if err != nil {
		return false, fmt.Errorf("audit: alert: %w", err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO audit_alerts (tenant_id, detector, severity, actor, patient_ref, window_start, window_end, value, detail, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
		ON CONFLICT (tenant_id, detector, actor, patient_ref, window_start) DO NOTHING
		RETURNING id::text`, a.TenantID, a.Detector, a.Severity, a.Actor, a.PatientRef, a.WindowStart, a.WindowEnd,
		a.Value, string(detail), now).Scan(&a.ID)
	if err == pgx.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: alert: %w", err)
	}
	a.CreatedAt = now.UTC()
	_, err = Append(ctx, tx, Event{TenantID: a.TenantID, OccurredAt: now, Actor: "vigil:anomaly-scan", ActorRole: "system",
		Action: ActionExecute, Verb: "audit.alert", Outcome: OutcomeSuccess, PatientRef: a.PatientRef,
		Detail: map[string]any{"alert_id": a.ID, "detector": a.Detector, "severity": a.Severity, "subject": a.Actor, "value": a.Value}})
	if err != nil {
		return false, err
	}
	return true, nil
}

// ListAlerts returns the tenant's alerts created at or after since, newest first (at most limit; default 100).
func ListAlerts(ctx context.Context, tx pgx.Tx, since time.Time, limit int) ([]Alert, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	rows, err := tx.Query(ctx, `SELECT id::text, tenant_id, detector, severity, actor, patient_ref, window_start, window_end,
		value, detail::text, created_at FROM audit_alerts
		WHERE tenant_id = current_setting('vigil.tenant_id', true) AND created_at >= $1
		ORDER BY created_at DESC, id LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: list alerts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alert, error) {
		var a Alert
		var detail string
		err := r.Scan(&a.ID, &a.TenantID, &a.Detector, &a.Severity, &a.Actor, &a.PatientRef, &a.WindowStart, &a.WindowEnd,
			&a.Value, &detail, &a.CreatedAt)
		if err == nil {
			err = json.Unmarshal([]byte(detail), &a.Detail)
		}
		a.WindowStart, a.WindowEnd, a.CreatedAt = a.WindowStart.UTC(), a.WindowEnd.UTC(), a.CreatedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: list alerts: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}
