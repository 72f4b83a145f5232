package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// Roles. They are cluster-wide, so Apply creates them once under an advisory lock.
const (
	// AppRole is the role the service connects as: no ownership, no BYPASSRLS.
	AppRole = "vigil_app"
	// MaintRole creates future audit partitions; the app role cannot.
	MaintRole = "vigil_maint"
	// RiverSchema holds River's tables (ids only, no PHI).
	RiverSchema = "river"
)

// roleLockKey serialises role creation across concurrent Apply calls (tests run packages in parallel).
const roleLockKey = 7_160_001

// Migration is one embedded SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	ents, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: read embedded files: %w", err)
	}
	var out []Migration
	for _, e := range ents {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migrations: file %q is not NNNN_name.sql", name)
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations: version %d used twice (%s, %s)", out[i].Version, out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Fingerprint is a sha256 over every embedded migration, used to name test templates.
func Fingerprint() (string, error) {
	ms, err := All()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00", m.Version, m.Name, m.SQL)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Result reports what Apply did.
type Result struct {
	Applied      []string
	RiverApplied []int
}

// Apply creates the roles if missing, then applies River's migrations and every
// pending Vigil migration, each in its own transaction, recording versions in
// schema_migrations. Running it again changes nothing.
func Apply(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (*Result, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := EnsureRoles(ctx, pool); err != nil {
		return nil, err
	}
	res := &Result{}
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+RiverSchema); err != nil {
		return nil, fmt.Errorf("migrations: create schema %s: %w", RiverSchema, err)
	}
	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: RiverSchema, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("migrations: river migrator: %w", err)
	}
	rr, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("migrations: river: %w", err)
	}
	for _, v := range rr.Versions {
		res.RiverApplied = append(res.RiverApplied, v.Version)
	}
	if _, err := pool.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    int PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}
	ms, err := All()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		applied, err := applyOne(ctx, pool, m)
		if err != nil {
			return res, err
		}
		if applied {
			res.Applied = append(res.Applied, m.Name)
			logger.InfoContext(ctx, "migration applied", "migration", m.Name)
		}
	}
	if err := grantRiver(ctx, pool); err != nil {
		return res, err
	}
	return res, nil
}

func applyOne(ctx context.Context, pool *pgxpool.Pool, m Migration) (bool, error) {
	applied := false
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// One migrator at a time per database.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('vigil.migrate'))`); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("migrations: apply %s: %w", m.Name, err)
	}
	return applied, nil
}

// EnsureRoles creates AppRole (LOGIN, NOBYPASSRLS) and MaintRole if they do not exist.
func EnsureRoles(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, roleLockKey); err != nil {
			return err
		}
		for _, r := range []struct{ name, attrs string }{
			{AppRole, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"},
			{MaintRole, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"},
		} {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, r.name).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := tx.Exec(ctx, `CREATE ROLE `+r.name+` `+r.attrs); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrations: ensure roles: %w", err)
	}
	return nil
}

func grantRiver(ctx context.Context, pool *pgxpool.Pool) error {
	stmts := []string{
		`GRANT USAGE ON SCHEMA ` + RiverSchema + ` TO ` + AppRole,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + RiverSchema + ` TO ` + AppRole,
		`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ` + RiverSchema + ` TO ` + AppRole,
		`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ` + RiverSchema + ` TO ` + AppRole,
		`GRANT SELECT ON schema_migrations TO ` + AppRole,
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("migrations: grant river to app role: %w", err)
		}
	}
	return nil
}
