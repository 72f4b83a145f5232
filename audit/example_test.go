package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/store"
)

// A change and its audit record commit in one transaction.
func ExampleAppend() {
	ctx := context.Background()
	db, err := store.Open(ctx, "postgres://vigil_app@127.0.0.1:5432/vigil")
	if err != nil {
		return
	}
	defer db.Close()
	_ = db.InTenant(ctx, "clinic-a", func(tx pgx.Tx) error {
		// ... the change itself, in tx ...
		_, err := audit.Append(ctx, tx, audit.Event{
			TenantID: "clinic-a", OccurredAt: time.Now(), Actor: "dr-jones", ActorRole: "physician",
			Action: audit.ActionUpdate, Verb: "review.approve", Outcome: audit.OutcomeSuccess,
			PatientRef: "Patient/123", Resources: []string{"Observation/9/_history/2"},
			DecisionID: "0b0c2a55-6c55-4d43-9f43-9a1c2c0d7e11", Detail: map[string]any{"reason_code": "agree"},
		})
		return err
	})
}

// Verify every tenant's chain against exported, signed checkpoints.
func ExampleVerify() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://root@127.0.0.1:5432/vigil")
	if err != nil {
		return
	}
	defer pool.Close()
	var pub ed25519.PublicKey       // the checkpoint signer's public key
	var exported []audit.Checkpoint // read with audit.ReadCheckpoints from the export
	rep, err := audit.Verify(ctx, pool, audit.VerifyOptions{PublicKey: pub, Checkpoints: exported})
	if rep != nil {
		fmt.Println(rep) // "OK", or "tenant t1: record seq 17 broken: hash mismatch"
	}
	_ = err // wraps audit.ErrChainBroken when a chain is broken
}
