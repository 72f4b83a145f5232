package access

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/store"
)

type dbBundle struct {
	ctx context.Context
	db  *testdb.DB
}

// setupDB creates a migrated database with three tenants:
//
//	clinic-a: issuer https://idp.a, client ui-a only
//	clinic-b: issuer https://idp.b, any client
//	clinic-c: issuer https://idp.b, client ui-c only; and https://idp.c
func setupDB(t *testing.T) *dbBundle {
	t.Helper()
	ctx := context.Background()
	db := testdb.New(t)
	_, err := db.Owner.Exec(ctx, `
		INSERT INTO tenants (id, name, config) VALUES
		('clinic-a', 'A', '{"issuers":[{"issuer":"https://idp.a","jwks_url":"https://idp.a/jwks","client_ids":["ui-a"],"audience":"vigil"}]}'),
		('clinic-b', 'B', '{"issuers":[{"issuer":"https://idp.b","jwks_url":"https://idp.b/certs"}]}'),
		('clinic-c', 'C', '{"issuers":[{"issuer":"https://idp.b","client_ids":["ui-c"]},{"issuer":"https://idp.c"}]}'),
		('clinic-d', 'D', '{"issuers":"not-a-list"}')`)
	if err != nil {
		t.Fatalf("insert tenants: %v", err)
	}
	return &dbBundle{ctx: ctx, db: db}
}

func TestRegistryIssuersAndBindTenant(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	reg := NewRegistryIssuers(b.db.App)

	t.Run("TenantsForIssuer", func(t *testing.T) {
		tests := []struct {
			issuer, client string
			want           []string
		}{
			{"https://idp.a", "ui-a", []string{"clinic-a"}},
			{"https://idp.a", "other", nil},
			{"https://idp.a", "", nil},
			{"https://idp.b", "ui-c", []string{"clinic-b", "clinic-c"}},
			{"https://idp.b", "other", []string{"clinic-b"}},
			{"https://idp.c", "", []string{"clinic-c"}},
			{"https://idp.evil", "ui-a", nil},
			{"", "", nil},
		}
		for _, tt := range tests {
			got, err := reg.TenantsForIssuer(b.ctx, tt.issuer, tt.client)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("TenantsForIssuer(%q, %q) = %v, %v; want %v", tt.issuer, tt.client, got, err, tt.want)
			}
		}
	})

	t.Run("IssuerJWKSURLs", func(t *testing.T) {
		got, err := IssuerJWKSURLs(b.ctx, b.db.App)
		want := map[string]string{"https://idp.a": "https://idp.a/jwks", "https://idp.b": "https://idp.b/certs"}
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("IssuerJWKSURLs = %v, %v; want %v", got, err, want)
		}
	})

	t.Run("BindTenant", func(t *testing.T) {
		tests := []struct {
			name           string
			iss, client    string
			claim, request string
			wantTenant     string // "" = ErrWrongTenant
		}{
			{"bound issuer and client", "https://idp.a", "ui-a", "", "clinic-a", "clinic-a"},
			{"sole tenant by default", "https://idp.a", "ui-a", "", "", "clinic-a"},
			{"matching tenant claim", "https://idp.a", "ui-a", "clinic-a", "clinic-a", "clinic-a"},
			{"claim alone, bound", "https://idp.b", "ui-c", "clinic-c", "", "clinic-c"},
			{"client not listed", "https://idp.a", "ui-x", "", "clinic-a", ""},
			{"other tenant's IdP", "https://idp.b", "ui-b", "", "clinic-a", ""},
			{"tenant claim from another tenant's IdP", "https://idp.b", "ui-b", "clinic-a", "", ""},
			{"claim disagrees with request", "https://idp.b", "ui-c", "clinic-b", "clinic-c", ""},
			{"ambiguous without request", "https://idp.b", "ui-c", "", "", ""},
			{"unknown issuer", "https://idp.evil", "ui-a", "", "clinic-a", ""},
			{"malformed tenant config binds nothing", "https://idp.b", "x", "", "clinic-d", ""},
		}
		for _, tt := range tests {
			p := &Principal{Subject: "u", Issuer: tt.iss, ClientID: tt.client, TenantClaim: tt.claim}
			err := BindTenant(b.ctx, p, tt.request, reg)
			if tt.wantTenant == "" {
				if !errors.Is(err, ErrWrongTenant) || p.TenantID != "" {
					t.Errorf("%s: err = %v, tenant %q; want ErrWrongTenant", tt.name, err, p.TenantID)
				}
				continue
			}
			if err != nil || p.TenantID != tt.wantTenant {
				t.Errorf("%s: err = %v, tenant %q; want %q", tt.name, err, p.TenantID, tt.wantTenant)
			}
		}
	})
}

func TestCareTeamAndBreakGlass(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	ctx, app := b.ctx, b.db.App
	clock := newFakeClock(testBase)
	inTenant := func(tenant string, fn func(pgx.Tx) error) error { return app.InTenant(ctx, tenant, fn) }

	// Care team: dr-care on pt-1 from an hour ago for a day; rn-old left yesterday.
	err := inTenant("clinic-a", func(tx pgx.Tx) error {
		for _, m := range []CareTeamMember{
			{TenantID: "clinic-a", PatientRef: "pt-1", Subject: "dr-care", Role: RolePhysician, Since: testBase.Add(-time.Hour), Until: testBase.Add(24 * time.Hour)},
			{TenantID: "clinic-a", PatientRef: "pt-1", Subject: "rn-old", Role: RoleNurse, Since: testBase.Add(-48 * time.Hour), Until: testBase.Add(-24 * time.Hour)},
			{TenantID: "clinic-a", PatientRef: "pt-1", Subject: "rn-open", Role: RoleNurse, Since: testBase.Add(-time.Hour)},
		} {
			if err := AddCareTeamMember(ctx, tx, m); err != nil {
				return err
			}
		}
		// Idempotent.
		return AddCareTeamMember(ctx, tx, CareTeamMember{TenantID: "clinic-a", PatientRef: "pt-1", Subject: "dr-care", Since: testBase.Add(-time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := inTenant("clinic-b", func(tx pgx.Tx) error {
		return AddCareTeamMember(ctx, tx, CareTeamMember{TenantID: "clinic-a", PatientRef: "pt-1", Subject: "dr-sneak", Since: testBase})
	}); err == nil {
		t.Fatal("inserted a clinic-a care-team row from a clinic-b transaction")
	}
	if err := inTenant("clinic-a", func(tx pgx.Tx) error {
		return AddCareTeamMember(ctx, tx, CareTeamMember{TenantID: "clinic-a", PatientRef: "pt-1", Subject: "x"})
	}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("missing since: %v", err)
	}

	ct := NewCareTeam(app)
	memberTests := []struct {
		tenant, subject string
		at              time.Time
		want            bool
	}{
		{"clinic-a", "dr-care", testBase, true},
		{"clinic-a", "dr-care", testBase.Add(-2 * time.Hour), false},
		{"clinic-a", "dr-care", testBase.Add(25 * time.Hour), false},
		{"clinic-a", "rn-old", testBase, false},
		{"clinic-a", "rn-open", testBase.Add(1000 * time.Hour), true},
		{"clinic-b", "dr-care", testBase, false}, // RLS: another tenant sees nothing
		{"clinic-a", "dr-none", testBase, false},
	}
	for _, tt := range memberTests {
		got, err := ct.IsMember(ctx, tt.tenant, "pt-1", tt.subject, tt.at)
		if err != nil || got != tt.want {
			t.Errorf("IsMember(%s, %s, %s) = %v, %v; want %v", tt.tenant, tt.subject, tt.at, got, err, tt.want)
		}
	}
	if err := inTenant("clinic-a", func(tx pgx.Tx) error {
		n, err := EndCareTeamMember(ctx, tx, "pt-1", "rn-open", testBase.Add(2*time.Hour))
		if err == nil && n != 1 {
			t.Errorf("EndCareTeamMember closed %d links, want 1", n)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := ct.IsMember(ctx, "clinic-a", "pt-1", "rn-open", testBase.Add(3*time.Hour)); ok {
		t.Error("ended membership still active")
	}

	// Break-the-glass.
	dr := &Principal{Subject: "dr-glass", Issuer: "https://idp.a", ClientID: "ui-a", Role: RolePhysician, Department: "oncology", TenantID: "clinic-a"}
	desk := &Principal{Subject: "desk-1", Role: RoleFrontDesk, TenantID: "clinic-a"}
	reqTests := []struct {
		name   string
		pr     *Principal
		reason string
		ttl    time.Duration
		want   error
	}{
		{"empty reason", dr, "", 0, ErrInvalidInput},
		{"short after trim", dr, "   urgent    ", 0, ErrInvalidInput},
		{"ttl too long", dr, "patient unresponsive in ED, chart needed", 13 * time.Hour, ErrInvalidInput},
		{"front desk", desk, "patient unresponsive in ED, chart needed", 0, ErrForbidden},
		{"unbound principal", &Principal{Subject: "x", Role: RolePhysician}, "patient unresponsive in ED, chart needed", 0, ErrInvalidInput},
	}
	for _, tt := range reqTests {
		err := inTenant("clinic-a", func(tx pgx.Tx) error {
			_, err := RequestBreakGlass(ctx, tx, tt.pr, "pt-1", tt.reason, testBase, tt.ttl)
			return err
		})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	var g Grant
	if err := inTenant("clinic-a", func(tx pgx.Tx) error {
		var err error
		g, err = RequestBreakGlass(ctx, tx, dr, "pt-1", "  patient unresponsive in ED, chart needed  ", testBase, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if g.ID == "" || g.Reason != "patient unresponsive in ED, chart needed" || !g.ExpiresAt.Equal(testBase.Add(DefaultBreakGlassTTL)) {
		t.Fatalf("grant = %+v", g)
	}
	if err := inTenant("clinic-a", func(tx pgx.Tx) error {
		for _, at := range []struct {
			t    time.Time
			want bool
		}{{testBase, true}, {testBase.Add(59 * time.Minute), true}, {testBase.Add(60 * time.Minute), false}, {testBase.Add(-time.Second), false}} {
			got, err := ActiveGrant(ctx, tx, "dr-glass", "pt-1", at.t)
			if err != nil {
				return err
			}
			if (got != nil) != at.want {
				t.Errorf("ActiveGrant at %s = %v, want %v", at.t, got, at.want)
			}
		}
		if got, err := ActiveGrant(ctx, tx, "dr-glass", "pt-2", testBase); got != nil || err != nil {
			t.Errorf("grant leaked to another patient: %v %v", got, err)
		}
		list, err := ListGrants(ctx, tx, testBase.Add(-time.Hour))
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].ID != g.ID || list[0].Reason != g.Reason || list[0].Issuer != "https://idp.a" {
			t.Errorf("ListGrants = %+v", list)
		}
		if list, _ := ListGrants(ctx, tx, testBase.Add(time.Minute)); len(list) != 0 {
			t.Errorf("ListGrants since later = %d grants", len(list))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := inTenant("clinic-b", func(tx pgx.Tx) error {
		list, err := ListGrants(ctx, tx, time.Time{})
		if err == nil && len(list) != 0 {
			t.Errorf("clinic-b sees %d clinic-a grants", len(list))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// The app can neither change nor delete a grant.
	for _, stmt := range []string{
		`UPDATE break_glass_grants SET expires_at = expires_at + interval '1 day'`,
		`DELETE FROM break_glass_grants`,
	} {
		err := inTenant("clinic-a", func(tx pgx.Tx) error { _, err := tx.Exec(ctx, stmt); return err })
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: err = %v, want permission denied", stmt, err)
		}
	}

	// The policy over the Postgres implementations, with the injected clock:
	// the grant works, then expires.
	pol := &Policy{CareTeam: ct, Grants: NewGrantChecker(app), Now: clock.Now}
	attrs := Attributes{PatientRef: "pt-1", Department: "cardiology", Sensitivity: []string{LabelBehavioralHealth}}
	steps := []struct {
		name    string
		pr      *Principal
		advance time.Duration
		allow   bool
		via     string
	}{
		{"care team", &Principal{Subject: "dr-care", Role: RolePhysician, Department: "oncology", TenantID: "clinic-a"}, 0, true, ViaCareTeam},
		{"break glass", dr, 0, true, ViaBreakGlass},
		{"break glass at 59m", dr, 59 * time.Minute, true, ViaBreakGlass},
		{"break glass expired", dr, 2 * time.Minute, false, ""},
		{"wrong tenant sees no grant", &Principal{Subject: "dr-glass", Role: RolePhysician, TenantID: "clinic-b"}, 0, false, ""},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		d := pol.Decide(ctx, s.pr, ActionItemRead, attrs)
		if d.Allow != s.allow || d.Via != s.via || d.Err != nil {
			t.Errorf("%s: decision = %+v", s.name, d)
		}
	}
}

func TestAccessTablesRLS(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	rows, err := b.db.Owner.Query(b.ctx, `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
		       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		  AND c.relname IN ('care_team_members', 'break_glass_grants', 'rate_limits')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name               string
		rls, force, policy bool
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.name, &x.rls, &x.force, &x.policy)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"break_glass_grants", true, true, true},
		{"care_team_members", true, true, true},
		{"rate_limits", false, false, false}, // global by design: hashed keys, no tenant data
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tables = %+v\nwant %+v", got, want)
	}
	// Without a tenant the app role sees no rows and cannot write any.
	if _, err := b.db.Owner.Exec(b.ctx, `INSERT INTO care_team_members (tenant_id, patient_ref, subject, since) VALUES ('clinic-a', 'pt-1', 'dr', now())`); err != nil {
		t.Fatal(err)
	}
	err = b.db.App.Global(b.ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(b.ctx, `SELECT count(*) FROM care_team_members`).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("no tenant: saw %d rows", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLimiterSharedBudget(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	// Two pools, as two Vigil instances would have.
	open := func() *store.DB {
		db, err := store.Open(b.ctx, b.db.AppURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	}
	db1, db2 := open(), open()
	clock := newFakeClock(testBase.Truncate(time.Minute))
	cfg := LimiterConfig{Name: "api.client", Limit: 5, Window: time.Minute, Secret: []byte("test-secret"), Now: clock.Now}
	l1, err := NewLimiter(db1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := NewLimiter(db2, cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("sequential across instances", func(t *testing.T) {
		for i := range 5 {
			l := l1
			if i%2 == 1 {
				l = l2
			}
			ok, _, err := l.Allow(b.ctx, "client:review-ui")
			if err != nil || !ok {
				t.Fatalf("request %d: ok=%v err=%v", i+1, ok, err)
			}
		}
		ok, retry, err := l2.Allow(b.ctx, "client:review-ui")
		if err != nil || ok {
			t.Fatalf("6th request: ok=%v err=%v, want denied", ok, err)
		}
		if retry < time.Second || retry > time.Minute {
			t.Fatalf("retryAfter = %s", retry)
		}
		if ok, _, _ := l1.Allow(b.ctx, "client:other"); !ok {
			t.Fatal("another key was limited")
		}
		other, _ := NewLimiter(db1, LimiterConfig{Name: "intake.ip", Limit: 5, Window: time.Minute, Now: clock.Now})
		if ok, _, _ := other.Allow(b.ctx, "client:review-ui"); !ok {
			t.Fatal("another limiter name shares the budget")
		}
		// Next window: the previous window's count still weighs in at its start…
		clock.Advance(time.Minute)
		if ok, _, _ := l1.Allow(b.ctx, "client:review-ui"); ok {
			t.Fatal("allowed at the start of the next window despite the sliding window")
		}
		// …and has faded by the end of it.
		clock.Advance(59 * time.Second)
		if ok, _, err := l1.Allow(b.ctx, "client:review-ui"); !ok || err != nil {
			t.Fatalf("late in the next window: ok=%v err=%v", ok, err)
		}
		clock.Advance(3 * time.Minute)
		if ok, _, _ := l2.Allow(b.ctx, "client:review-ui"); !ok {
			t.Fatal("denied after the budget recovered")
		}
	})

	t.Run("concurrent across instances", func(t *testing.T) {
		c2 := cfg
		c2.Name, c2.Limit = "burst", 20
		a, _ := NewLimiter(db1, c2)
		bb, _ := NewLimiter(db2, c2)
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for i := range 40 {
			l := a
			if i%2 == 1 {
				l = bb
			}
			wg.Go(func() {
				ok, _, err := l.Allow(b.ctx, "client:burst")
				if err != nil {
					t.Error(err)
				}
				if ok {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := allowed.Load(); n != 20 {
			t.Fatalf("allowed %d of 40, want exactly 20", n)
		}
	})

	t.Run("no raw keys stored, cleanup", func(t *testing.T) {
		var n int
		if err := b.db.Owner.QueryRow(b.ctx, `SELECT count(*) FROM rate_limits WHERE position('review-ui'::bytea IN key_hash) > 0`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("raw key in table: n=%d err=%v", n, err)
		}
		clock.Advance(10 * time.Minute)
		deleted, err := l1.Cleanup(b.ctx)
		if err != nil || deleted == 0 {
			t.Fatalf("Cleanup = %d, %v", deleted, err)
		}
		if err := b.db.Owner.QueryRow(b.ctx, `SELECT count(*) FROM rate_limits`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows left after cleanup: %d %v", n, err)
		}
	})
}

func TestNewLimiterConfig(t *testing.T) {
	t.Parallel()
	db := &store.DB{}
	for _, cfg := range []LimiterConfig{{Limit: 0, Window: time.Minute}, {Limit: 1, Window: time.Millisecond}} {
		if _, err := NewLimiter(db, cfg); err == nil {
			t.Errorf("NewLimiter(%+v) accepted", cfg)
		}
	}
	if _, err := NewLimiter(nil, LimiterConfig{Limit: 1, Window: time.Minute}); err == nil {
		t.Error("nil db accepted")
	}
}
