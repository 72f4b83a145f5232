package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/migrations"
)

// ErrNoTenant is returned when a tenant-scoped transaction is asked for without a tenant id.
var ErrNoTenant = errors.New("store: tenant id required")

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ValidTenantID reports whether s has the shape the tenant registry accepts.
func ValidTenantID(s string) bool { return tenantIDPattern.MatchString(s) }

// DB wraps a pgx pool. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to url and pings it.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx masks passwords in ParseConfigError.
		return nil, fmt.Errorf("store: parse database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: ping %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &DB{pool: pool}, nil
}

// New wraps an existing pool.
func New(pool *pgxpool.Pool) *DB { return &DB{pool: pool} }

// Pool returns the underlying pool (for River's driver, which shares it).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes the pool.
func (db *DB) Close() { db.pool.Close() }

// InTenant runs fn in a transaction whose row-level-security tenant is tenantID.
// fn's error rolls the transaction back and is returned as is.
func (db *DB) InTenant(ctx context.Context, tenantID string, fn func(pgx.Tx) error) error {
	if tenantID == "" {
		return ErrNoTenant
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := SetTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		return fn(tx)
	})
}

// Global runs fn in a transaction with no tenant: tenant tables show no rows.
// For the global tables (the tenant registry) only.
func (db *DB) Global(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// SetTenant sets the transaction-local tenant on tx. Callers outside this
// package use it only for transactions River hands them (InsertTx, JobCompleteTx).
func SetTenant(ctx context.Context, tx pgx.Tx, tenantID string) error {
	if tenantID == "" {
		return ErrNoTenant
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('vigil.tenant_id', $1, true)`, tenantID); err != nil {
		return fmt.Errorf("store: set tenant: %w", err)
	}
	return nil
}

// AppURL derives the application's connection URL from the owner's by
// switching the user to migrations.AppRole (and dropping any password).
// Deployments with password or certificate auth set VIGIL_APP_DATABASE_URL instead.
func AppURL(ownerURL string) (string, error) {
	u, err := url.Parse(ownerURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("store: database url must be postgres://… (got scheme %q)", schemeOf(u))
	}
	u.User = url.User(migrations.AppRole)
	return u.String(), nil
}

func schemeOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme
}
