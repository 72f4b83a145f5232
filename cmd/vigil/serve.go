package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/access"
	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/workers"
)

func runServe(ctx context.Context, g *globals, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(g.Stderr, "usage: vigil serve (configured by environment variables; see README)")
		return 2
	}
	e := env{g}
	addr := e.str("VIGIL_LISTEN_ADDR", "127.0.0.1:8443")
	certFile, keyFile := e.str("VIGIL_TLS_CERT", ""), e.str("VIGIL_TLS_KEY", "")
	plaintext, err := e.boolean("VIGIL_DEV_PLAINTEXT", false)
	if err == nil && certFile == "" && !plaintext {
		err = errors.New("VIGIL_TLS_CERT and VIGIL_TLS_KEY are required (or VIGIL_DEV_PLAINTEXT=true on a loopback address for development)")
	}
	if err == nil && !plaintext && (certFile == "") != (keyFile == "") {
		err = errors.New("VIGIL_TLS_CERT and VIGIL_TLS_KEY must be set together")
	}
	if err == nil && plaintext {
		err = access.CheckListenAddr(addr, true)
		if err != nil {
			err = fmt.Errorf("VIGIL_LISTEN_ADDR with VIGIL_DEV_PLAINTEXT: %w", err)
		}
	}
	insecure, err2 := e.boolean("VIGIL_ALLOW_INSECURE_LOOPBACK", false)
	runWorkers, err3 := e.boolean("VIGIL_WORKERS", true)
	if err = errors.Join(err, err2, err3); err != nil {
		fmt.Fprintf(g.Stderr, "vigil serve: %v\n", err)
		return 1
	}
	keys, err := keyProvider(g)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil serve: %v\n", err)
		return 1
	}
	url, err := appURL(g)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil serve: %v\n", err)
		return 1
	}
	maint, closeMaint, err := maintenanceConfig(ctx, g)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil serve: %v\n", err)
		return 1
	}
	defer closeMaint()
	a, err := app.New(ctx, app.Config{AppDatabaseURL: url, Keys: keys, Audience: e.str("VIGIL_AUDIENCE", "vigil"),
		AllowInsecureLoopback: insecure, Logger: g.Logger, Workers: workers.Config{Maintenance: maint}})
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil serve: %v\n%s", err, postgresHint)
		return 1
	}
	if runWorkers {
		if err := a.Start(ctx); err != nil {
			fmt.Fprintf(g.Stderr, "vigil serve: workers: %v\n", err)
			return 1
		}
	}
	g.Logger.Info("vigil serving", "addr", addr, "tls", !plaintext, "workers", runWorkers, "key_provider", keys.ID())
	code := serveHTTP(ctx, g, a.API, addr, certFile, keyFile, plaintext)
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = a.Close(stopCtx)
	return code
}

// httpTimeouts bound how long a client may take (slow-loris defence).
type httpTimeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// defaultHTTPTimeouts are the listener's timeouts in production.
func defaultHTTPTimeouts() httpTimeouts {
	return httpTimeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second, Idle: 120 * time.Second}
}

// maintenanceConfig reads the audit maintenance settings. Each missing
// prerequisite disables its job, and startup says so.
func maintenanceConfig(ctx context.Context, g *globals) (workers.Maintenance, func(), error) {
	e := env{g}
	m := workers.Maintenance{CheckpointDir: e.str("VIGIL_AUDIT_CHECKPOINT_DIR", "")}
	closer := func() {}
	if path := e.str("VIGIL_AUDIT_SIGNING_KEY", ""); path != "" {
		k, err := readPrivateKey(path)
		if err != nil {
			return m, closer, fmt.Errorf("VIGIL_AUDIT_SIGNING_KEY: %w", err)
		}
		m.SigningKey = k
		if m.CheckpointDir == "" {
			g.Logger.Warn("VIGIL_AUDIT_CHECKPOINT_DIR not set: checkpoints are signed but not exported, so retention will keep every partition")
		}
	} else {
		g.Logger.Warn("VIGIL_AUDIT_SIGNING_KEY not set: no periodic signed audit checkpoints")
	}
	partitions, err := e.boolean("VIGIL_AUDIT_PARTITIONS", true)
	if err != nil {
		return m, closer, err
	}
	if partitions {
		pool, err := pgxpool.New(ctx, maintURL(g))
		if err == nil {
			err = pool.Ping(ctx)
		}
		if err != nil {
			return m, closer, fmt.Errorf("VIGIL_MAINT_DATABASE_URL (maintenance role for audit partitions; VIGIL_AUDIT_PARTITIONS=false to run without): %w", err)
		}
		m.MaintPool, closer = pool, pool.Close
	}
	if m.Anomalies, err = e.boolean("VIGIL_AUDIT_ANOMALIES", true); err != nil {
		return m, closer, err
	}
	if path := e.str("VIGIL_AUDIT_DETECTORS", ""); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return m, closer, fmt.Errorf("VIGIL_AUDIT_DETECTORS: %w", err)
		}
		m.Detectors, err = audit.LoadDetectorConfig(f)
		f.Close()
		if err != nil {
			return m, closer, fmt.Errorf("VIGIL_AUDIT_DETECTORS: %w", err)
		}
	}
	return m, closer, nil
}

// newHTTPServer applies timeouts against slow clients and logs server errors
// through the structured logger (its messages carry no request content).
func newHTTPServer(h http.Handler, logger *slog.Logger, to httpTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: to.ReadHeader,
		ReadTimeout:       to.Read,
		WriteTimeout:      to.Write,
		IdleTimeout:       to.Idle,
		MaxHeaderBytes:    32 << 10,
		TLSConfig:         access.ServerTLSConfig(),
		ErrorLog:          log.New(slogWriter{logger}, "", 0),
	}
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("http server", "message", string(p))
	return len(p), nil
}

func serveHTTP(ctx context.Context, g *globals, h http.Handler, addr, certFile, keyFile string, plaintext bool) int {
	srv := newHTTPServer(h, g.Logger, defaultHTTPTimeouts())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(g.Stderr, "vigil serve: VIGIL_LISTEN_ADDR: %v\n", err)
		return 1
	}
	errc := make(chan error, 1)
	go func() {
		if plaintext {
			errc <- srv.Serve(ln)
		} else {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		}
	}()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return 0
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return 0
		}
		fmt.Fprintf(g.Stderr, "vigil serve: %v\n", err)
		return 1
	}
}

func runKeys(_ context.Context, g *globals, args []string) int {
	if len(args) != 2 || args[0] != "generate" {
		fmt.Fprintln(g.Stderr, "usage: vigil keys generate FILE")
		return 2
	}
	if err := seal.GenerateLocalKey(args[1]); err != nil {
		fmt.Fprintf(g.Stderr, "vigil keys: %v\n", err)
		return 1
	}
	fmt.Fprintf(g.Stdout, "key-encryption key written to %s (mode 0600); set VIGIL_KEY_FILE=%s\n", args[1], args[1])
	return 0
}
