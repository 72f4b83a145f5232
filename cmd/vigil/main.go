// Command vigil is Vigil's single binary: serve, migrate, demo, tenants,
// audit, rules, explain and eval.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// globals is what every subcommand gets: its I/O, the environment and a logger.
// Only cmd reads the environment.
type globals struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Logger         *slog.Logger
}

// subcommand runs with the arguments after its name and returns the exit code.
type subcommand struct {
	summary string
	run     func(ctx context.Context, g *globals, args []string) int
}

func commands() map[string]subcommand {
	return map[string]subcommand{
		"migrate": {"apply database migrations (as the owner)", runMigrate},
		"serve":   {"run the API and the workers", runServe},
		"tenants": {"add, list or show tenants in the registry", runTenants},
		"explain": {"print a decision's full record", runExplain},
		"keys":    {"generate a local key-encryption key", runKeys},
		"demo":    {"run the end-to-end demo on the local PostgreSQL", runDemo},
		"audit":   {"verify, search, export, checkpoint the audit trail; alerts; disclosures", runAudit},
		"rules":   {"lint, eval, test, diff rule packs; publish, activate, list; replay a decision", runRules},
		"eval":    {"evaluate the pipeline on labelled cases (no database; --json)", runEval},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	os.Exit(run(ctx, g, os.Args[1:]))
}

func run(ctx context.Context, g *globals, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(g.Stderr, cmds)
		return 2
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(g.Stderr, "vigil: unknown command %q\n", args[0])
		usage(g.Stderr, cmds)
		return 2
	}
	return c.run(ctx, g, args[1:])
}

func usage(w io.Writer, cmds map[string]subcommand) {
	fmt.Fprintln(w, "usage: vigil <command> [flags]")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}
