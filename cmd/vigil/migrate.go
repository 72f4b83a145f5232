package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/migrations"
)

// defaultDatabaseURL is the local development server; VIGIL_DATABASE_URL overrides it.
const defaultDatabaseURL = "postgres://root@127.0.0.1:5432/vigil?sslmode=disable"

func ownerURL(g *globals) string {
	if u := g.Getenv("VIGIL_DATABASE_URL"); u != "" {
		return u
	}
	return defaultDatabaseURL
}

func runMigrate(ctx context.Context, g *globals, args []string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	dbURL := fs.String("database-url", ownerURL(g), "owner connection URL (VIGIL_DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pool, err := pgxpool.New(ctx, *dbURL)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil migrate: cannot reach PostgreSQL: %v\n%s", err, postgresHint)
		return 1
	}
	defer pool.Close()
	res, err := migrations.Apply(ctx, pool, g.Logger)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil migrate: %v\n", err)
		return 1
	}
	if len(res.Applied) == 0 {
		fmt.Fprintln(g.Stdout, "migrations: up to date")
	} else {
		fmt.Fprintf(g.Stdout, "migrations applied: %s\n", strings.Join(res.Applied, ", "))
	}
	return 0
}

const postgresHint = `Vigil needs PostgreSQL. On this machine start it with:
  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
or point VIGIL_DATABASE_URL at a server you own (postgres://user@host:5432/db).
`
