// Package testdb gives each test its own PostgreSQL database, cloned from a
// template that is migrated once per migration set. The server URL comes from
// TEST_DATABASE_URL (default postgres://root@127.0.0.1:5432/postgres). Without
// a reachable server a test fails with a message saying how to start one.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/migrations"
	"github.com/vigil-health/vigil/store"
)

// DefaultURL is the local development server (trust auth, as root).
const DefaultURL = "postgres://root@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns TEST_DATABASE_URL or DefaultURL.
func ServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// DB is one test's database.
type DB struct {
	Name     string
	OwnerURL string // connects as the server's admin user (migrations, superuser tamper tests)
	AppURL   string // connects as migrations.AppRole
	Owner    *pgxpool.Pool
	App      *store.DB
}

// New creates a fresh migrated database for t and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmpl, err := ensureTemplate(ctx)
	if err != nil {
		t.Fatalf("testdb: %v\nStart PostgreSQL (pg_ctlcluster 15 main start) or set TEST_DATABASE_URL.", err)
	}
	name := "vigil_test_" + randHex(6)
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tmpl)); err != nil {
		t.Fatalf("testdb: create %s: %v", name, err)
	}
	d := &DB{Name: name, OwnerURL: withDB(ServerURL(), name)}
	d.AppURL, err = store.AppURL(d.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	d.Owner, err = pgxpool.New(ctx, d.OwnerURL)
	if err != nil {
		t.Fatalf("testdb: owner pool: %v", err)
	}
	d.App, err = store.Open(ctx, d.AppURL)
	if err != nil {
		t.Fatalf("testdb: app pool: %v", err)
	}
	t.Cleanup(func() {
		d.App.Close()
		d.Owner.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			t.Logf("testdb: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
			t.Logf("testdb: drop %s: %v", name, err)
		}
	})
	return d
}

// ensureTemplate creates and migrates the template for the current migration
// set once; concurrent test binaries wait on an advisory lock.
func ensureTemplate(ctx context.Context) (string, error) {
	fp, err := migrations.Fingerprint()
	if err != nil {
		return "", err
	}
	tmpl := "vigil_tmpl_" + fp
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", redact(ServerURL()), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(7160002)`); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), `SELECT pg_advisory_unlock(7160002)`)
	var ready bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, tmpl).Scan(&ready); err != nil {
		return "", err
	}
	if ready {
		return tmpl, nil
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, tmpl)); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s`, tmpl)); err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, withDB(ServerURL(), tmpl))
	if err != nil {
		return "", err
	}
	_, err = migrations.Apply(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s WITH IS_TEMPLATE true`, tmpl)); err != nil {
		return "", err
	}
	// Drop templates of older migration sets so they don't pile up.
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'vigil_tmpl_%' AND datname <> $1`, tmpl)
	if err == nil {
		var old []string
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil {
				old = append(old, n)
			}
		}
		rows.Close()
		for _, n := range old {
			admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s WITH IS_TEMPLATE false`, n))
			admin.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, n))
		}
	}
	return tmpl, nil
}

func withDB(server, name string) string {
	u, err := url.Parse(server)
	if err != nil {
		return server
	}
	u.Path = "/" + name
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
