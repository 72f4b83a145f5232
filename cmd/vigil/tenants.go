package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runTenants(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(g.Stderr, "usage: vigil tenants add|list|show [flags]")
		return 2
	}
	db, err := store.Open(ctx, ownerURL(g))
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil tenants: %v\n%s", err, postgresHint)
		return 1
	}
	defer db.Close()
	switch args[0] {
	case "list":
		return tenantsList(ctx, g, db)
	case "show":
		if len(args) != 2 {
			fmt.Fprintln(g.Stderr, "usage: vigil tenants show TENANT")
			return 2
		}
		return tenantsShow(ctx, g, db, args[1])
	case "add":
		return tenantsAdd(ctx, g, db, args[1:])
	default:
		fmt.Fprintf(g.Stderr, "vigil tenants: unknown subcommand %q (want add, list or show)\n", args[0])
		return 2
	}
}

func tenantsList(ctx context.Context, g *globals, db *store.DB) int {
	var ts []*store.Tenant
	if err := db.Global(ctx, func(tx pgx.Tx) error {
		var err error
		ts, err = store.ListTenants(ctx, tx)
		return err
	}); err != nil {
		fmt.Fprintf(g.Stderr, "vigil tenants list: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(g.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tLLM\tFHIR\tISSUERS")
	for _, t := range ts {
		var iss []string
		for _, i := range t.Config.Issuers {
			iss = append(iss, i.Issuer)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Config.LLM.Mode, t.Config.FHIR.BaseURL, strings.Join(iss, ","))
	}
	tw.Flush()
	return 0
}

func tenantsShow(ctx context.Context, g *globals, db *store.DB, id string) int {
	var t *store.Tenant
	if err := db.Global(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = store.GetTenant(ctx, tx, id)
		return err
	}); err != nil {
		fmt.Fprintf(g.Stderr, "vigil tenants show: %v\n", err)
		return 1
	}
	out := map[string]any{"id": t.ID, "name": t.Name, "config": t.Config, "secrets_stored": len(t.SecretsEnc) > 0,
		"created_at": t.CreatedAt, "updated_at": t.UpdatedAt}
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	return 0
}

func tenantsAdd(ctx context.Context, g *globals, db *store.DB, args []string) int {
	fs := flag.NewFlagSet("tenants add", flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	id := fs.String("id", "", "tenant id (a-z, 0-9, '-')")
	name := fs.String("name", "", "display name")
	configFile := fs.String("config", "", "JSON file with the tenant configuration (flags below override it)")
	fhirURL := fs.String("fhir-base-url", "", "FHIR R4 base URL")
	fhirTokenEnv := fs.String("fhir-token-env", "", "name of an environment variable holding the FHIR bearer token (sealed when stored)")
	var issuers, thresholds multiFlag
	fs.Var(&issuers, "issuer", "ISSUER=JWKS_URL[,client1,client2] (repeatable)")
	fs.Var(&thresholds, "threshold", "ROUTE=0.8 confidence threshold (repeatable; 'default' for the rest)")
	llmMode := fs.String("llm-mode", "", "off | shadow | on")
	llmURL := fs.String("llm-base-url", "", "OpenAI-compatible base URL (added to the allowlist as BAA-covered with --llm-baa)")
	llmModel := fs.String("llm-model", "", "model name")
	llmBAA := fs.Bool("llm-baa", false, "the LLM endpoint is covered by a business associate agreement")
	llmKeyEnv := fs.String("llm-key-env", "", "name of an environment variable holding the LLM API key (sealed when stored)")
	notifier := fs.String("notifier-url", "", "webhook that receives escalations")
	queues := fs.String("queues", "", "comma-separated queues")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var cfg store.TenantConfig
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil tenants add: --config: %v\n", err)
			return 1
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			fmt.Fprintf(g.Stderr, "vigil tenants add: --config %s: %v\n", *configFile, err)
			return 1
		}
	}
	if *fhirURL != "" {
		cfg.FHIR.BaseURL = *fhirURL
	}
	for _, is := range issuers {
		k, v, ok := strings.Cut(is, "=")
		if !ok {
			fmt.Fprintf(g.Stderr, "vigil tenants add: --issuer %q: want ISSUER=JWKS_URL[,client...]\n", is)
			return 2
		}
		parts := strings.Split(v, ",")
		cfg.Issuers = append(cfg.Issuers, store.Issuer{Issuer: k, JWKSURL: parts[0], ClientIDs: parts[1:]})
	}
	for _, th := range thresholds {
		k, v, ok := strings.Cut(th, "=")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			fmt.Fprintf(g.Stderr, "vigil tenants add: --threshold %q: want ROUTE=0.8\n", th)
			return 2
		}
		if cfg.Thresholds == nil {
			cfg.Thresholds = map[string]float64{}
		}
		cfg.Thresholds[k] = f
	}
	if *llmMode != "" {
		cfg.LLM.Mode = *llmMode
	}
	if *llmURL != "" {
		cfg.LLM.BaseURL = *llmURL
		cfg.LLM.Allowlist = append(cfg.LLM.Allowlist, store.LLMEndpoint{BaseURL: *llmURL, BAA: *llmBAA})
	}
	if *llmModel != "" {
		cfg.LLM.Model = *llmModel
	}
	if *notifier != "" {
		cfg.NotifierURL = *notifier
	}
	if *queues != "" {
		cfg.Queues = strings.Split(*queues, ",")
	}
	secrets := store.Secrets{}
	if *fhirTokenEnv != "" {
		secrets.FHIRToken = g.Getenv(*fhirTokenEnv)
	}
	if *llmKeyEnv != "" {
		secrets.LLMAPIKey = g.Getenv(*llmKeyEnv)
	}
	t := &store.Tenant{ID: *id, Name: *name, Config: cfg}
	if t.Name == "" {
		t.Name = t.ID
	}
	var keys seal.KeyProvider
	if secrets != (store.Secrets{}) {
		k, err := keyProvider(g)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil tenants add: secrets given: %v\n", err)
			return 1
		}
		keys = k
	}
	if err := addTenant(ctx, db, t, secrets, keys, cliActor()); err != nil {
		fmt.Fprintf(g.Stderr, "vigil tenants add: %v\n", err)
		return 1
	}
	fmt.Fprintf(g.Stdout, "tenant %s saved (llm mode %s)\n", t.ID, t.Config.WithDefaults().LLM.Mode)
	return 0
}

// addTenant writes the registry row, seals secrets and audits the change with a
// hash of the configuration (never the secrets), in one transaction.
func addTenant(ctx context.Context, db *store.DB, t *store.Tenant, secrets store.Secrets, keys seal.KeyProvider, actor string) error {
	if t.Config.PseudonymSalt == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		t.Config.PseudonymSalt = hex.EncodeToString(b)
	}
	return db.InTenant(ctx, t.ID, func(tx pgx.Tx) error {
		if err := store.PutTenant(ctx, tx, t); err != nil {
			return err
		}
		if secrets != (store.Secrets{}) {
			sealer, err := seal.New(keys)
			if err != nil {
				return err
			}
			ct, keyID, err := triage.SealTenantSecrets(ctx, tx, sealer, t.ID, secrets)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE tenants SET secrets = $2, secrets_key = $3 WHERE id = $1`, t.ID, ct, keyID); err != nil {
				return err
			}
		}
		cfgJSON, _ := json.Marshal(t.Config.WithDefaults())
		sum := sha256.Sum256(cfgJSON)
		_, err := audit.Append(ctx, tx, audit.Event{TenantID: t.ID, OccurredAt: time.Now().UTC(), Actor: actor, ActorRole: "admin",
			Action: audit.ActionUpdate, Verb: "config.tenant", Outcome: "success",
			Detail: map[string]any{"config_sha256": hex.EncodeToString(sum[:]), "llm_mode": t.Config.WithDefaults().LLM.Mode,
				"llm_model": t.Config.LLM.Model, "llm_base_url": t.Config.LLM.BaseURL, "secrets_updated": secrets != (store.Secrets{})}})
		return err
	})
}
