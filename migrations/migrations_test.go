package migrations_test

import (
	"context"
	"testing"

	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/migrations"
)

// Applying the migrations again changes nothing, and every version is recorded.
func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	db := testdb.New(t) // already migrated from the template
	ctx := context.Background()
	res, err := migrations.Apply(ctx, db.Owner, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || len(res.RiverApplied) != 0 {
		t.Fatalf("second Apply changed things: %+v", res)
	}
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(all) || n < 3 {
		t.Fatalf("%d versions recorded, %d embedded", n, len(all))
	}
	var river int
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM river.river_migration`).Scan(&river); err != nil || river == 0 {
		t.Fatalf("River's migrations not recorded in schema river: %d, %v", river, err)
	}
}
