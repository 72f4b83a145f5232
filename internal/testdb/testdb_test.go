package testdb_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/internal/testdb"
)

func TestNewGivesAppRoleWithoutBypass(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	var user string
	var bypass, super bool
	err := db.App.Global(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_user, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&user, &bypass, &super)
	})
	if err != nil {
		t.Fatal(err)
	}
	if user != "vigil_app" || bypass || super {
		t.Fatalf("app connects as %s (bypassrls=%v superuser=%v), want vigil_app without either", user, bypass, super)
	}
}
