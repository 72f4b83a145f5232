package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/devidp"
	"github.com/vigil-health/vigil/internal/fixtures"
	"github.com/vigil-health/vigil/migrations"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

const demoTenant = "demo-clinic"

// demoEvent is one event the demo posts, as an EHR integration would.
type demoEvent struct {
	label string
	ref   fhir.Ref
	// asNotification posts it as a FHIR Subscription notification (id-only)
	// instead of a plain reference.
	asNotification bool
}

func runDemo(ctx context.Context, g *globals, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	dbName := fs.String("db", "vigil_demo", "name of the demo database (dropped and re-created)")
	stateDir := fs.String("state", ".vigil-demo", "directory for the demo's key-encryption key")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for every event to be decided")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	d := &demo{g: g, out: g.Stdout}
	if err := d.run(ctx, *dbName, *stateDir, *timeout); err != nil {
		fmt.Fprintf(g.Stderr, "\nvigil demo: %v\n", err)
		return 1
	}
	return 0
}

type demo struct {
	g   *globals
	out io.Writer

	mu       sync.Mutex
	received [][]byte // what the notifier webhook received
}

func (d *demo) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

func (d *demo) run(ctx context.Context, dbName, stateDir string, timeout time.Duration) error {
	e := env{d.g}
	server := e.str("VIGIL_DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres?sslmode=disable")
	ownerURL, err := databaseURL(server, dbName)
	if err != nil {
		return fmt.Errorf("VIGIL_DATABASE_URL: %w", err)
	}
	d.say("Vigil demo: AI-assisted clinical triage, end to end on the local PostgreSQL.\n")

	// 1. A fresh, migrated database.
	if err := recreateDatabase(ctx, server, dbName); err != nil {
		return fmt.Errorf("%w\n%s", err, postgresHint)
	}
	owner, err := pgxpool.New(ctx, ownerURL)
	if err != nil {
		return err
	}
	defer owner.Close()
	if _, err := migrations.Apply(ctx, owner, nil); err != nil {
		return err
	}
	d.say("database     %s created and migrated (app connects as role %s, RLS forced on every tenant table)", dbName, migrations.AppRole)

	// 2. A local key-encryption key for sealed PHI.
	keyPath := filepath.Join(stateDir, "kek.hex")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if err := seal.GenerateLocalKey(keyPath); err != nil {
			return err
		}
	}
	keys, err := seal.LoadLocalKey(keyPath)
	if err != nil {
		return err
	}

	// 3. A FHIR server with the bundled Synthea patients and the scenario resources.
	fstore := fhir.NewStore()
	scenarioRefs, err := fixtures.Load(fstore)
	if err != nil {
		return err
	}
	patients, _ := fs.Glob(fixtures.Synthea(), "*.json")
	fhirURL, stopFHIR, err := serveLocal(fhir.NewHandler(fstore))
	if err != nil {
		return err
	}
	defer stopFHIR()
	d.say("fhir server  %s (%d Synthea patients + %d scenario resources)", fhirURL, len(patients), len(scenarioRefs))

	// 4. An identity provider, and the escalation webhook.
	idp, err := devidp.New("http://127.0.0.1/demo-idp", "vigil", nil)
	if err != nil {
		return err
	}
	idpURL, stopIdP, err := serveLocal(idp.JWKSHandler())
	if err != nil {
		return err
	}
	defer stopIdP()
	hookURL, stopHook, err := serveLocal(http.HandlerFunc(d.webhook))
	if err != nil {
		return err
	}
	defer stopHook()

	// 5. The tenant.
	db, err := store.Open(ctx, ownerURL)
	if err != nil {
		return err
	}
	cfg := store.TenantConfig{
		Issuers:     []store.Issuer{{Issuer: idp.Issuer, JWKSURL: idpURL + "/jwks", ClientIDs: []string{"ehr-integration", "review-ui"}}},
		FHIR:        store.FHIRConfig{BaseURL: fhirURL, AllowInsecureLoopback: true, MaxRetrySeconds: 20},
		NotifierURL: hookURL,
		Thresholds:  map[string]float64{"default": 0.8},
	}
	secrets := store.Secrets{}
	drafter := "baseline drafter (deterministic, no LLM): set VIGIL_LLM_BASE_URL and VIGIL_LLM_MODEL to use a model"
	if llmURL := e.str("VIGIL_LLM_BASE_URL", ""); llmURL != "" {
		model := e.str("VIGIL_LLM_MODEL", "")
		if model == "" {
			db.Close()
			return errors.New("VIGIL_LLM_BASE_URL is set but VIGIL_LLM_MODEL is not")
		}
		tmo, err := e.duration("VIGIL_LLM_TIMEOUT", 20*time.Second)
		if err != nil {
			db.Close()
			return err
		}
		// The demo treats the endpoint you name as BAA-covered: that is your assertion, not Vigil's.
		cfg.LLM = store.LLMConfig{Mode: store.LLMOn, BaseURL: llmURL, Model: model, TimeoutSeconds: tmo.Seconds(),
			Allowlist: []store.LLMEndpoint{{BaseURL: llmURL, BAA: true}}, AllowInsecureLoopback: true}
		secrets.LLMAPIKey = e.str("OPENAI_API_KEY", "")
		drafter = fmt.Sprintf("LLM %s at %s (mode on; drafts are grounded against the record before use)", model, llmURL)
	}
	err = addTenant(ctx, db, &store.Tenant{ID: demoTenant, Name: "Demo Clinic", Config: cfg}, secrets, keys, "demo")
	db.Close()
	if err != nil {
		return err
	}
	d.say("tenant       %s registered; drafter: %s", demoTenant, drafter)

	// 6. Vigil itself: workers and API, as `vigil serve` runs them.
	appURL, err := store.AppURL(ownerURL)
	if err != nil {
		return err
	}
	// The process log (JSON, no PHI) goes to a file so the terminal shows the demo.
	logPath := filepath.Join(stateDir, "vigil.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(ctx, app.Config{AppDatabaseURL: appURL, Keys: keys, Audience: "vigil", AllowInsecureLoopback: true,
		FHIRBaseBackoff: 100 * time.Millisecond, Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(sctx)
	}()
	if err := a.Start(ctx); err != nil {
		return err
	}
	apiURL, stopAPI, err := serveLocal(a.API)
	if err != nil {
		return err
	}
	defer stopAPI()
	d.say("vigil api    %s (development plaintext on loopback; production requires TLS); process log: %s\n", apiURL, logPath)

	// 7. The EHR posts its events.
	token, err := idp.Mint(devidp.Token{Subject: "ehr-integration", ClientID: "ehr-integration", Role: "integration", Scopes: "system/Subscription.c"})
	if err != nil {
		return err
	}
	events := []demoEvent{
		{label: "critical potassium", ref: scenarioRefs["scn-k-critical"]},
		{label: "abnormal HbA1c", ref: scenarioRefs["scn-hba1c-high"], asNotification: true},
		{label: "chest pain message", ref: scenarioRefs["scn-msg-chest"]},
		{label: "refill request", ref: scenarioRefs["scn-msg-refill"], asNotification: true},
		{label: "ambiguous message", ref: scenarioRefs["scn-msg-ambiguous"]},
	}
	for i, ev := range events {
		body, err := intakeBody(ev, i+1)
		if err != nil {
			return err
		}
		status, resp, err := post(ctx, apiURL+"/fhir/r4/intake", token, body)
		if err != nil {
			return err
		}
		if status != http.StatusAccepted {
			return fmt.Errorf("intake of %s answered %d: %s", ev.label, status, resp)
		}
		kind := "reference"
		if ev.asNotification {
			kind = "subscription notification"
		}
		d.say("posted       %-20s %s as a %s", ev.label, ev.ref, kind)
	}
	// The same event again: deduplicated, no second decision.
	dup, _ := intakeBody(events[2], 3)
	if status, resp, err := post(ctx, apiURL+"/fhir/r4/intake", token, dup); err != nil || status != http.StatusAccepted || !strings.Contains(resp, `"duplicate": true`) {
		return fmt.Errorf("re-posting an event was not deduplicated (status %d)", status)
	}
	d.say("posted       %-20s again: accepted as a duplicate, not decided twice", events[2].label)
	// A malformed body: refused, nothing stored.
	if status, resp, _ := post(ctx, apiURL+"/fhir/r4/intake", token, []byte(`{"resourceType":"Bundle","type":"transaction"}`)); status == http.StatusBadRequest {
		d.say("posted       a malformed bundle: refused with 400 (%s)", oneLine(resp))
	}

	// 8. Wait for every decision.
	d.say("\nworking…")
	rows, err := d.waitDecisions(ctx, owner, len(events), timeout)
	if err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond) // let the delivery worker post the escalations
	if err := d.waitDeliveries(ctx, rows, 10*time.Second); err != nil {
		d.say("(warning: %v)", err)
	}
	d.printTable(rows, events)

	// 9. What the on-call webhook received.
	d.mu.Lock()
	d.say("\nOn-call webhook received %d escalation message(s) (ids and priorities only, no PHI):", len(d.received))
	for _, b := range d.received {
		d.say("  %s", b)
	}
	d.mu.Unlock()

	// 10. The audit chain.
	rep, err := audit.Verify(ctx, owner, audit.VerifyOptions{TenantID: demoTenant})
	if err != nil {
		return err
	}
	d.say("\nAudit chain verification (vigil audit verify --tenant %s): %s", demoTenant, strings.TrimSpace(rep.String()))
	if !rep.OK {
		return errors.New("audit verification failed")
	}
	var k *demoRow
	for i := range rows {
		if rows[i].trigger == scenarioRefs["scn-k-critical"].Unversioned().String() {
			k = &rows[i]
		}
	}
	d.say("\nNext:")
	if k != nil {
		d.say("  VIGIL_DATABASE_URL=%s VIGIL_KEY_FILE=%s go run ./cmd/vigil explain %s", ownerURL, keyPath, k.id)
	}
	d.say("  VIGIL_DATABASE_URL=%s go run ./cmd/vigil audit verify", ownerURL)
	return nil
}

func (d *demo) webhook(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	d.mu.Lock()
	d.received = append(d.received, bytes.TrimSpace(b))
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

type demoRow struct {
	id, trigger, pseudonym, disposition, priority string
	flags, rules                                  []string
	confidence                                    float64
	drafter                                       string
	toEscalation                                  time.Duration
	reasons                                       []string
}

func (d *demo) waitDecisions(ctx context.Context, owner *pgxpool.Pool, want int, timeout time.Duration) ([]demoRow, error) {
	deadline := time.Now().Add(timeout)
	db := store.New(owner)
	for {
		var n int
		err := db.InTenant(ctx, demoTenant, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM decisions WHERE stage <> 'escalated'`).Scan(&n)
		})
		if err != nil {
			return nil, err
		}
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d events decided after %s", n, want, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	var rows []demoRow
	err := db.InTenant(ctx, demoTenant, func(tx pgx.Tx) error {
		r, err := tx.Query(ctx, `SELECT id::text FROM decisions ORDER BY received_at, id`)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range ids {
			ex, err := triage.Explain(ctx, tx, demoTenant, id, nil)
			if err != nil {
				return err
			}
			rows = append(rows, rowOf(ex))
		}
		return nil
	})
	return rows, err
}

func rowOf(ex *triage.Explanation) demoRow {
	dec := ex.Decision
	row := demoRow{id: dec.ID, trigger: dec.TriggerType + "/" + dec.TriggerID, pseudonym: dec.PatientPseudonym,
		disposition: dec.Outcome.Disposition.String(), priority: dec.Outcome.Priority.String(), flags: dec.Outcome.Flags.Strings(), confidence: -1}
	if dec.EscalatedAt != nil {
		row.toEscalation = dec.EscalatedAt.Sub(dec.ReceivedAt)
	}
	seen := map[string]bool{}
	for _, rv := range ex.Revisions {
		for _, h := range rv.Record.RuleHits {
			if !seen[h.RuleID] {
				seen[h.RuleID] = true
				row.rules = append(row.rules, h.RuleID)
			}
		}
		if c := rv.Record.Confidence; c != nil {
			row.confidence = c.Effective
		}
		if dr := rv.Record.Draft; dr != nil {
			row.drafter = dr.Drafter
		}
		if rv.Stage != triage.StageReviewed {
			row.reasons = rv.Record.Outcome.Reasons
		}
	}
	return row
}

func (d *demo) waitDeliveries(ctx context.Context, rows []demoRow, timeout time.Duration) error {
	want := 0
	for _, r := range rows {
		if r.disposition == "ESCALATED" {
			want++
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		got := len(d.received)
		d.mu.Unlock()
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook received %d of %d escalations", got, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *demo) printTable(rows []demoRow, events []demoEvent) {
	labels := map[string]string{}
	for _, ev := range events {
		labels[ev.ref.Unversioned().String()] = ev.label
	}
	d.say("")
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATIENT\tTRIGGER\tDISPOSITION\tPRIORITY\tCONFIDENCE\tRULES FIRED\tINTAKE→ESCALATION\tWHY")
	for _, r := range rows {
		conf := "-"
		if r.confidence >= 0 {
			conf = fmt.Sprintf("%.2f", r.confidence)
		}
		esc := "-"
		if r.toEscalation > 0 {
			esc = r.toEscalation.Round(time.Millisecond).String()
		}
		rulesFired := strings.Join(r.rules, ",")
		if rulesFired == "" {
			rulesFired = "-"
		}
		why := ""
		if len(r.reasons) > 0 {
			why = r.reasons[0]
		}
		if len(r.flags) > 0 {
			why += " [" + strings.Join(r.flags, ",") + "]"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\t%s\t%s\t%s\n", r.pseudonym, labels[r.trigger], r.trigger, r.disposition, r.priority, conf, rulesFired, esc, why)
	}
	tw.Flush()
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.disposition]++
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	drafter := ""
	if len(rows) > 0 {
		drafter = rows[len(rows)-1].drafter
	}
	d.say("\n%d decisions (%s); drafter used: %s", len(rows), strings.Join(parts, ", "), drafter)
}

func intakeBody(ev demoEvent, number int) ([]byte, error) {
	if !ev.asNotification {
		return json.Marshal(map[string]string{"reference": ev.ref.String()})
	}
	return json.Marshal(map[string]any{
		"resourceType": "Bundle", "type": "history", "timestamp": time.Now().UTC().Format(time.RFC3339),
		"entry": []any{map[string]any{
			"fullUrl": "urn:uuid:status-" + fmt.Sprint(number),
			"resource": map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "subscription", "valueReference": map[string]string{"reference": "Subscription/demo-results"}},
				map[string]any{"name": "topic", "valueCanonical": "http://vigil.example/topics/new-results-and-messages"},
				map[string]any{"name": "status", "valueCode": "active"},
				map[string]any{"name": "type", "valueCode": "event-notification"},
				map[string]any{"name": "notification-event", "part": []any{
					map[string]any{"name": "event-number", "valueString": fmt.Sprint(number)},
					map[string]any{"name": "focus", "valueReference": map[string]string{"reference": ev.ref.String()}},
				}},
			}},
		}},
	})
}

func post(ctx context.Context, url, token string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), nil
}

func oneLine(s string) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if json.Unmarshal([]byte(s), &oo) == nil && len(oo.Issue) > 0 {
		return oo.Issue[0].Diagnostics
	}
	return strings.Join(strings.Fields(s), " ")
}

// serveLocal serves h on an ephemeral loopback port.
func serveLocal(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func databaseURL(server, name string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("want postgres://user@host:port/db")
	}
	u.Path = "/" + name
	return u.String(), nil
}

func recreateDatabase(ctx context.Context, server, name string) error {
	c, err := pgx.Connect(ctx, server)
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return err
	}
	_, err = c.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	return err
}
