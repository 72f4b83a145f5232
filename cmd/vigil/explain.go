package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

func runExplain(ctx context.Context, g *globals, args []string) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	asJSON := fs.Bool("json", false, "print the decision record as JSON")
	tenant := fs.String("tenant", "", "tenant id (found from the decision when the operator may see all tenants)")
	noSealed := fs.Bool("no-sealed", false, "do not open the sealed parts (message text, LLM request/response, drafts)")
	// Accept flags before or after the decision id.
	var id string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		rest = fs.Args()
		if len(rest) > 0 {
			if id != "" {
				fmt.Fprintln(g.Stderr, "usage: vigil explain [--json] [--tenant T] DECISION-ID")
				return 2
			}
			id, rest = rest[0], rest[1:]
		}
	}
	if id == "" {
		fmt.Fprintln(g.Stderr, "usage: vigil explain [--json] [--tenant T] DECISION-ID")
		return 2
	}
	db, err := store.Open(ctx, ownerURL(g))
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil explain: %v\n%s", err, postgresHint)
		return 1
	}
	defer db.Close()
	if *tenant == "" {
		if *tenant, err = decisionTenant(ctx, db, id); err != nil {
			fmt.Fprintf(g.Stderr, "vigil explain: %v\n", err)
			return 1
		}
	}
	var sealer *seal.Sealer
	if !*noSealed {
		k, err := keyProvider(g)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil explain: %v (or pass --no-sealed)\n", err)
			return 1
		}
		if sealer, err = seal.New(k); err != nil {
			fmt.Fprintf(g.Stderr, "vigil explain: %v\n", err)
			return 1
		}
	}
	var ex *triage.Explanation
	err = db.InTenant(ctx, *tenant, func(tx pgx.Tx) error {
		var err error
		if ex, err = triage.Explain(ctx, tx, *tenant, id, sealer); err != nil {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Event{TenantID: *tenant, OccurredAt: time.Now().UTC(), Actor: cliActor(), ActorRole: "operator",
			Action: audit.ActionRead, Verb: "decision.explain", Outcome: "success", PatientRef: ex.Decision.PatientRef,
			DecisionID: ex.Decision.ID, Purpose: "HOPERAT", Detail: map[string]any{"sealed_opened": sealer != nil}})
		return err
	})
	if errors.Is(err, triage.ErrNotFound) {
		fmt.Fprintf(g.Stderr, "vigil explain: decision %s not found for tenant %s\n", id, *tenant)
		return 1
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil explain: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ex); err != nil {
			return 1
		}
		return 0
	}
	if err := ex.WriteText(g.Stdout); err != nil {
		return 1
	}
	return 0
}

// decisionTenant finds the tenant of a decision. Only an operator whose role
// bypasses RLS (the database owner in development) can search all tenants;
// others pass --tenant.
func decisionTenant(ctx context.Context, db *store.DB, id string) (string, error) {
	var tenant string
	err := db.Global(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT tenant_id FROM decisions WHERE id::text = $1`, id).Scan(&tenant)
	})
	if err != nil {
		return "", fmt.Errorf("decision %s not found (pass --tenant if your role is tenant-scoped)", id)
	}
	return tenant, nil
}
