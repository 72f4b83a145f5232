package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/migrations"
	"github.com/vigil-health/vigil/store"
)

const auditUsage = `usage: vigil audit <command> [flags]
  verify       check the hash chains and checkpoint signatures; prints OK or the first broken record per tenant
  checkpoint   sign a checkpoint of every tenant's chain head and export it (JSON lines)
  keygen       create an ed25519 signing key for checkpoints
  search       search one tenant's audit trail (NDJSON)
  export       export one tenant's audit trail (ndjson | fhir | fhir-ndjson); the export is itself audited
  alerts       list anomaly alerts (--scan runs the detectors first)
  disclosures  accounting of disclosures for one patient (HIPAA §164.528)
  partitions   create monthly partitions ahead and, with --drop-expired, apply retention (as the maintenance role)
`

// runAudit is "vigil audit".
func runAudit(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(g.Stderr, auditUsage)
		return 2
	}
	cmds := map[string]func(context.Context, *globals, []string) int{
		"verify":      auditVerify,
		"checkpoint":  auditCheckpoint,
		"keygen":      auditKeygen,
		"search":      auditSearch,
		"export":      auditExport,
		"alerts":      auditAlerts,
		"disclosures": auditDisclosures,
		"partitions":  auditPartitions,
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(g.Stderr, "vigil audit: unknown command %q\n%s", args[0], auditUsage)
		return 2
	}
	return c(ctx, g, args[1:])
}

func auditFlags(g *globals, name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("audit "+name, flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	dbURL := fs.String("database-url", ownerURL(g), "connection URL (VIGIL_DATABASE_URL); the owner or the app role")
	return fs, dbURL
}

func auditPool(ctx context.Context, g *globals, url string) (*pgxpool.Pool, bool) {
	pool, err := pgxpool.New(ctx, url)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit: cannot reach PostgreSQL: %v\n%s", err, postgresHint)
		return nil, false
	}
	return pool, true
}

func auditVerify(ctx context.Context, g *globals, args []string) int {
	fs, dbURL := auditFlags(g, "verify")
	tenant := fs.String("tenant", "", "verify one tenant (default: every tenant)")
	since := fs.String("since", "", "checkpoint file (JSON lines): start each tenant's verification at its latest checkpoint there")
	pubFile := fs.String("public-key", "", "ed25519 public key file (PEM, hex or base64) to check checkpoint signatures")
	cpFile := fs.String("checkpoints", "", "exported checkpoint file (JSON lines) to check the chain against")
	file := fs.String("file", "", "verify an unfiltered NDJSON export offline instead of the database")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := audit.VerifyOptions{TenantID: *tenant}
	if *pubFile != "" {
		pub, err := readPublicKey(*pubFile)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
			return 2
		}
		opts.PublicKey = pub
	}
	if *cpFile != "" {
		cps, err := readCheckpointFile(*cpFile)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
			return 2
		}
		opts.Checkpoints = cps
	}
	sinceBy := map[string]audit.Checkpoint{}
	if *since != "" {
		cps, err := readCheckpointFile(*since)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
			return 2
		}
		for _, c := range cps {
			if cur, ok := sinceBy[c.TenantID]; !ok || c.Seq > cur.Seq {
				sinceBy[c.TenantID] = c
			}
		}
	}
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
			return 2
		}
		defer f.Close()
		total := &audit.Report{OK: true}
		for t, c := range sinceBy {
			o := opts
			o.TenantID, o.Since = t, &c
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
				return 1
			}
			rep, err := audit.VerifyNDJSON(f, o)
			if rep == nil {
				fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
				return 1
			}
			total.OK = total.OK && rep.OK
			total.Tenants = append(total.Tenants, rep.Tenants...)
		}
		if len(sinceBy) == 0 {
			rep, err := audit.VerifyNDJSON(f, opts)
			if rep == nil {
				fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
				return 1
			}
			total = rep
		}
		return printVerify(g, total, opts, len(sinceBy) > 0)
	}
	pool, ok := auditPool(ctx, g, *dbURL)
	if !ok {
		return 1
	}
	defer pool.Close()

	// One Verify per tenant when --since anchors differ by tenant.
	var tenants []string
	if *tenant != "" {
		tenants = []string{*tenant}
	} else if len(sinceBy) > 0 {
		rows, err := pool.Query(ctx, `SELECT id FROM tenants ORDER BY id`)
		if err == nil {
			tenants, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit verify: list tenants: %v\n", err)
			return 1
		}
	} else {
		tenants = []string{""}
	}
	total := &audit.Report{OK: true}
	for _, t := range tenants {
		o := opts
		o.TenantID = t
		if c, ok := sinceBy[t]; ok {
			o.Since = &c
		}
		rep, err := audit.Verify(ctx, pool, o)
		if err != nil && !errors.Is(err, audit.ErrChainBroken) {
			fmt.Fprintf(g.Stderr, "vigil audit verify: %v\n", err)
			return 1
		}
		total.OK = total.OK && rep.OK
		total.Tenants = append(total.Tenants, rep.Tenants...)
	}
	return printVerify(g, total, opts, len(sinceBy) > 0)
}

func printVerify(g *globals, total *audit.Report, opts audit.VerifyOptions, since bool) int {
	fmt.Fprintln(g.Stdout, total.String())
	if opts.PublicKey == nil {
		fmt.Fprintln(g.Stderr, "note: no --public-key: checkpoint signatures were not checked")
	}
	if len(opts.Checkpoints) == 0 && !since {
		fmt.Fprintln(g.Stderr, "note: no exported checkpoints given: a chain rewritten with fresh hashes cannot be detected")
	}
	for _, t := range total.Tenants {
		fmt.Fprintf(g.Stderr, "tenant %s: records %d..%d checked (%d), %d not yet anchored by a checkpoint\n",
			t.TenantID, t.From, t.LastSeq, t.Checked, t.Unanchored)
	}
	if !total.OK {
		return 1
	}
	return 0
}

func auditCheckpoint(ctx context.Context, g *globals, args []string) int {
	fs, dbURL := auditFlags(g, "checkpoint")
	keyFile := fs.String("signing-key", g.Getenv("VIGIL_AUDIT_SIGNING_KEY"), "ed25519 private key file (VIGIL_AUDIT_SIGNING_KEY)")
	out := fs.String("out", "-", "append the signed checkpoints (JSON lines) to this file; - for stdout")
	all := fs.Bool("all", false, "export every stored checkpoint, not only the new ones")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *keyFile == "" {
		fmt.Fprintln(g.Stderr, "vigil audit checkpoint: --signing-key or VIGIL_AUDIT_SIGNING_KEY required")
		return 2
	}
	key, err := readPrivateKey(*keyFile)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit checkpoint: %v\n", err)
		return 2
	}
	pool, ok := auditPool(ctx, g, *dbURL)
	if !ok {
		return 1
	}
	defer pool.Close()
	now := time.Now()
	cps, err := audit.WriteCheckpoint(ctx, pool, key, now)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit checkpoint: %v\n", err)
		return 1
	}
	if *all {
		cps = nil
		rows, err := pool.Query(ctx, `SELECT id FROM tenants ORDER BY id`)
		var tenants []string
		if err == nil {
			tenants, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		for _, t := range tenants {
			if err != nil {
				break
			}
			err = store.New(pool).InTenant(ctx, t, func(tx pgx.Tx) error {
				c, err := audit.ListCheckpoints(ctx, tx, t)
				cps = append(cps, c...)
				return err
			})
		}
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit checkpoint: %v\n", err)
			return 1
		}
	}
	var buf bytes.Buffer
	if err := audit.WriteCheckpoints(&buf, cps); err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit checkpoint: %v\n", err)
		return 1
	}
	dest := "stdout"
	if *out == "-" {
		_, err = g.Stdout.Write(buf.Bytes())
	} else {
		dest = "file:" + *out
		var f *os.File
		f, err = os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.Write(buf.Bytes())
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit checkpoint: write: %v\n", err)
		return 1
	}
	if err := audit.MarkExported(ctx, pool, cps, dest, now); err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit checkpoint: %v\n", err)
		return 1
	}
	fmt.Fprintf(g.Stderr, "%d checkpoint(s) signed by key %s exported to %s\n", len(cps), audit.KeyID(key.Public().(ed25519.PublicKey)), dest)
	return 0
}

func auditKeygen(ctx context.Context, g *globals, args []string) int {
	fs := flag.NewFlagSet("audit keygen", flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	out := fs.String("out", "", "write the private key (PEM, mode 0600) here; the public key goes to OUT.pub")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(g.Stderr, "vigil audit keygen: --out required")
		return 2
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err == nil {
		err = writeKeys(*out, pub, priv)
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(g.Stdout, "key %s: private %s, public %s.pub\n", audit.KeyID(pub), *out, *out)
	return 0
}

func writeKeys(path string, pub ed25519.PublicKey, priv ed25519.PrivateKey) error {
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	px, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: px}), 0o644)
}

// queryFlags adds the search filters to fs.
func queryFlags(fs *flag.FlagSet) func() (audit.Query, error) {
	tenant := fs.String("tenant", "", "tenant id (required)")
	patient := fs.String("patient", "", "patient reference, e.g. Patient/123")
	user := fs.String("user", "", "actor")
	action := fs.String("action", "", "C, R, U, D or E")
	verb := fs.String("verb", "", "specific verb, e.g. review.read")
	resource := fs.String("resource", "", "FHIR reference")
	outcome := fs.String("outcome", "", "success, failure or denied")
	ip := fs.String("ip", "", "source IP")
	decision := fs.String("decision", "", "decision id")
	from := fs.String("from", "", "from time (RFC 3339), inclusive")
	to := fs.String("to", "", "to time (RFC 3339), exclusive")
	desc := fs.Bool("desc", false, "newest first")
	return func() (audit.Query, error) {
		q := audit.Query{TenantID: *tenant, PatientRef: *patient, Actor: *user, Action: audit.Action(*action), Verb: *verb,
			Resource: *resource, Outcome: *outcome, SourceIP: *ip, DecisionID: *decision, Desc: *desc}
		if q.TenantID == "" {
			return q, errors.New("--tenant required")
		}
		var err error
		if *from != "" {
			if q.From, err = time.Parse(time.RFC3339Nano, *from); err != nil {
				return q, fmt.Errorf("--from: %w", err)
			}
		}
		if *to != "" {
			if q.To, err = time.Parse(time.RFC3339Nano, *to); err != nil {
				return q, fmt.Errorf("--to: %w", err)
			}
		}
		return q, nil
	}
}

// cliRequester is who the CLI acts as in the audit trail.
func cliRequester(g *globals, actor string) audit.Requester {
	if actor == "" {
		actor = g.Getenv("VIGIL_AUDIT_ACTOR")
	}
	if actor == "" {
		if u, err := user.Current(); err == nil {
			actor = u.Username
		}
	}
	return audit.Requester{Actor: "cli:" + actor, ActorRole: "operator", ClientID: "vigil-cli", UserAgent: "vigil-cli", Purpose: "HOPERAT"}
}

func auditSearch(ctx context.Context, g *globals, args []string) int {
	fs, dbURL := auditFlags(g, "search")
	query := queryFlags(fs)
	limit := fs.Int("limit", 100, "page size (at most 1000)")
	cursor := fs.String("cursor", "", "continue from a previous page's cursor")
	actor := fs.String("as", "", "who is searching (default VIGIL_AUDIT_ACTOR or the OS user)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	q, err := query()
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit search: %v\n", err)
		return 2
	}
	q.Limit, q.Cursor, q.By = *limit, *cursor, cliRequester(g, *actor)
	pool, ok := auditPool(ctx, g, *dbURL)
	if !ok {
		return 1
	}
	defer pool.Close()
	var page audit.Page
	var out bytes.Buffer
	err = store.New(pool).InTenant(ctx, q.TenantID, func(tx pgx.Tx) error {
		var err error
		if page, err = audit.Search(ctx, tx, q); err != nil {
			return err
		}
		enc := json.NewEncoder(&out)
		for i := range page.Records {
			if err := enc.Encode(page.Records[i].JSON()); err != nil {
				return err
			}
		}
		// Reading the audit trail is itself audited; nothing is printed unless this commits.
		_, err = audit.Append(ctx, tx, audit.Event{TenantID: q.TenantID, OccurredAt: time.Now(), Actor: q.By.Actor,
			ActorRole: q.By.ActorRole, ClientID: q.By.ClientID, UserAgent: q.By.UserAgent, Purpose: q.By.Purpose,
			Action: audit.ActionRead, Verb: "audit.search", Outcome: audit.OutcomeSuccess, PatientRef: q.PatientRef,
			Detail: map[string]any{audit.DetailCount: len(page.Records)}})
		return err
	})
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit search: %v\n", err)
		return 1
	}
	g.Stdout.Write(out.Bytes())
	if page.NextCursor != "" {
		fmt.Fprintf(g.Stderr, "next page: --cursor %s\n", page.NextCursor)
	}
	return 0
}

func auditExport(ctx context.Context, g *globals, args []string) int {
	fs, dbURL := auditFlags(g, "export")
	query := queryFlags(fs)
	format := fs.String("format", "ndjson", "ndjson | fhir (R4 Bundle of AuditEvent) | fhir-ndjson")
	out := fs.String("out", "-", "output file; - for stdout")
	actor := fs.String("as", "", "who is exporting (default VIGIL_AUDIT_ACTOR or the OS user)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	q, err := query()
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit export: %v\n", err)
		return 2
	}
	q.By = cliRequester(g, *actor)
	exp := map[string]func(context.Context, pgx.Tx, audit.Query, io.Writer) (int, error){
		"ndjson": audit.ExportNDJSON, "fhir": audit.ExportFHIR, "fhir-ndjson": audit.ExportFHIRNDJSON,
	}[*format]
	if exp == nil {
		fmt.Fprintf(g.Stderr, "vigil audit export: unknown format %q\n", *format)
		return 2
	}
	pool, ok := auditPool(ctx, g, *dbURL)
	if !ok {
		return 1
	}
	defer pool.Close()
	// Written to a temporary file first and released only once the export's audit record commits.
	tmp, err := os.CreateTemp("", "vigil-audit-export-*")
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit export: %v\n", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var n int
	err = store.New(pool).InTenant(ctx, q.TenantID, func(tx pgx.Tx) error {
		var err error
		n, err = exp(ctx, tx, q, tmp)
		return err
	})
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err == nil {
		if *out == "-" {
			_, err = io.Copy(g.Stdout, tmp)
		} else {
			var f *os.File
			if f, err = os.Create(*out); err == nil {
				_, err = io.Copy(f, tmp)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit export: %v\n", err)
		return 1
	}
	fmt.Fprintf(g.Stderr, "%d records exported (%s)\n", n, *format)
	return 0
}

func auditAlerts(ctx context.Context, g *globals, args []string) int {
	fs, dbURL := auditFlags(g, "alerts")
	tenant := fs.String("tenant", "", "tenant id (required)")
	since := fs.Duration("since", 7*24*time.Hour, "alerts created in this period")
	scan := fs.Bool("scan", false, "run the detectors (default rules and thresholds) before listing")
	limit := fs.Int("limit", 100, "most alerts listed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *tenant == "" {
		fmt.Fprintln(g.Stderr, "vigil audit alerts: --tenant required")
		return 2
	}
	pool, ok := auditPool(ctx, g, *dbURL)
	if !ok {
		return 1
	}
	defer pool.Close()
	db := store.New(pool)
	now := time.Now()
	if *scan {
		if _, err := audit.ScanAnomalies(ctx, db, audit.DetectorConfig{}, now); err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit alerts: %v\n", err)
			return 1
		}
	}
	var alerts []audit.Alert
	err := db.InTenant(ctx, *tenant, func(tx pgx.Tx) error {
		var err error
		alerts, err = audit.ListAlerts(ctx, tx, now.Add(-*since), *limit)
		return err
	})
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit alerts: %v\n", err)
		return 1
	}
	for _, a := range alerts {
		fmt.Fprintf(g.Stdout, "%s  %-6s  %-22s  actor=%s  value=%g  window=%s..%s  id=%s\n", a.CreatedAt.Format(time.RFC3339),
			a.Severity, a.Detector, a.Actor, a.Value, a.WindowStart.Format(time.RFC3339), a.WindowEnd.Format(time.RFC3339), a.ID)
	}
	if len(alerts) == 0 {
		fmt.Fprintln(g.Stdout, "no alerts")
	}
	return 0
}

func auditDisclosures(ctx context.Context, g *globals, args []string) int {
	fs, dbURL := auditFlags(g, "disclosures")
	tenant := fs.String("tenant", "", "tenant id (required)")
	patient := fs.String("patient", "", "patient reference, e.g. Patient/123 (required)")
	since := fs.String("since", "", "from time (RFC 3339; default six years ago)")
	actor := fs.String("as", "", "who is asking (default VIGIL_AUDIT_ACTOR or the OS user)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *tenant == "" || *patient == "" {
		fmt.Fprintln(g.Stderr, "vigil audit disclosures: --tenant and --patient required")
		return 2
	}
	from := time.Now().AddDate(-6, 0, 0)
	if *since != "" {
		var err error
		if from, err = time.Parse(time.RFC3339Nano, *since); err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit disclosures: --since: %v\n", err)
			return 2
		}
	}
	pool, ok := auditPool(ctx, g, *dbURL)
	if !ok {
		return 1
	}
	defer pool.Close()
	by := cliRequester(g, *actor)
	var ds []audit.Disclosure
	err := store.New(pool).InTenant(ctx, *tenant, func(tx pgx.Tx) error {
		var err error
		if ds, err = audit.Disclosures(ctx, tx, *patient, from); err != nil {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Event{TenantID: *tenant, OccurredAt: time.Now(), Actor: by.Actor,
			ActorRole: by.ActorRole, ClientID: by.ClientID, UserAgent: by.UserAgent, Purpose: by.Purpose,
			Action: audit.ActionRead, Verb: "audit.disclosures", Outcome: audit.OutcomeSuccess, PatientRef: *patient,
			Detail: map[string]any{audit.DetailCount: len(ds)}})
		return err
	})
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit disclosures: %v\n", err)
		return 1
	}
	if len(ds) == 0 {
		fmt.Fprintln(g.Stdout, "no disclosures")
		return 0
	}
	for _, d := range ds {
		who := d.Actor
		if d.ActorRole != "" {
			who += " (" + d.ActorRole + ")"
		}
		if d.OnBehalfOf != "" {
			who += " on behalf of " + d.OnBehalfOf
		}
		to := ""
		if d.Recipient != "" {
			to = " to " + d.Recipient
		}
		bg := ""
		if d.BreakGlass {
			bg = " [break-the-glass]"
		}
		fmt.Fprintf(g.Stdout, "%s  %s%s  %s%s  purpose=%s  resources=%s\n", d.At.Format(time.RFC3339), who, to, d.Verb, bg,
			d.Purpose, strings.Join(d.Resources, ","))
	}
	return 0
}

func readCheckpointFile(path string) ([]audit.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cps, err := audit.ReadCheckpoints(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Seq < cps[j].Seq })
	return cps, nil
}

// readKeyBytes returns a PEM block's DER, or the raw bytes of a hex or base64 text file.
func readKeyBytes(path string) (der []byte, raw []byte, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		return blk.Bytes, nil, nil
	}
	s := strings.TrimSpace(string(b))
	if v, err := hex.DecodeString(s); err == nil {
		return nil, v, nil
	}
	if v, err := base64.StdEncoding.DecodeString(s); err == nil {
		return nil, v, nil
	}
	return nil, nil, fmt.Errorf("%s: not a PEM, hex or base64 key", path)
}

func readPublicKey(path string) (ed25519.PublicKey, error) {
	der, raw, err := readKeyBytes(path)
	if err != nil {
		return nil, err
	}
	if der != nil {
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an ed25519 public key", path)
		}
		return pub, nil
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%s: ed25519 public key must be %d bytes", path, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, raw, err := readKeyBytes(path)
	if err != nil {
		return nil, err
	}
	if der != nil {
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an ed25519 private key", path)
		}
		return priv, nil
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(raw), nil
	}
	return nil, fmt.Errorf("%s: ed25519 private key must be a %d-byte seed or %d bytes", path, ed25519.SeedSize, ed25519.PrivateKeySize)
}

// maintURL is VIGIL_MAINT_DATABASE_URL, or the owner URL with the user switched to the maintenance role.
func maintURL(g *globals) string {
	if u := g.Getenv("VIGIL_MAINT_DATABASE_URL"); u != "" {
		return u
	}
	u, err := url.Parse(ownerURL(g))
	if err != nil {
		return ownerURL(g)
	}
	u.User = url.User(migrations.MaintRole)
	return u.String()
}

func auditPartitions(ctx context.Context, g *globals, args []string) int {
	fs := flag.NewFlagSet("audit partitions", flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	dbURL := fs.String("database-url", maintURL(g), "maintenance role URL (VIGIL_MAINT_DATABASE_URL)")
	ahead := fs.Int("ahead", 3, "months to create ahead of the current one")
	drop := fs.Bool("drop-expired", false, "drop partitions older than the retention period (only when covered by an exported checkpoint and not on legal hold)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pool, ok := auditPool(ctx, g, *dbURL)
	if !ok {
		return 1
	}
	defer pool.Close()
	now := time.Now()
	refused, err := audit.EnsurePartitions(ctx, pool, now, *ahead)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit partitions: %v\n", err)
		return 1
	}
	for _, m := range refused {
		fmt.Fprintf(g.Stderr, "month %s: rows already in the default partition; partition not created\n", m.Format("2006-01"))
	}
	if *drop {
		rep, err := audit.DropExpiredPartitions(ctx, pool, now, audit.RetentionPolicy{Logger: g.Logger})
		if err != nil {
			fmt.Fprintf(g.Stderr, "vigil audit partitions: %v\n", err)
			return 1
		}
		for _, d := range rep.Decisions {
			fmt.Fprintf(g.Stdout, "%s: %s\n", d.Partition, d.Reason)
		}
	}
	ps, err := audit.ListPartitions(ctx, pool)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil audit partitions: %v\n", err)
		return 1
	}
	for _, p := range ps {
		fmt.Fprintf(g.Stdout, "%s  %s .. %s\n", p.Name, p.From.Format("2006-01-02"), p.Before.Format("2006-01-02"))
	}
	return 0
}
