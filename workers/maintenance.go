package workers

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/store"
)

// Maintenance configures the audit trail's periodic jobs. River elects one
// leader to enqueue periodic jobs, so each runs once per interval however many
// Vigil processes there are. A job whose prerequisites are not configured is
// not registered (and cmd says so at startup).
type Maintenance struct {
	// SigningKey signs audit checkpoints (ed25519). Nil: no checkpoint job.
	SigningKey ed25519.PrivateKey
	// CheckpointDir receives every checkpoint as JSON lines, outside the
	// database, before it is marked exported (retention requires that).
	// Empty: checkpoints are written and signed but not exported.
	CheckpointDir      string
	CheckpointInterval time.Duration // default 1 h
	// MaintPool connects as the maintenance role, which alone may create and
	// drop audit partitions. Nil: no partition job.
	MaintPool         *pgxpool.Pool
	PartitionInterval time.Duration // default 24 h
	PartitionsAhead   int           // months created ahead (default 3)
	Retention         audit.RetentionPolicy
	// Anomalies runs the detectors over recent audit events.
	Anomalies       bool
	Detectors       audit.DetectorConfig
	AnomalyInterval time.Duration // default 15 min
}

func (m Maintenance) withDefaults() Maintenance {
	if m.CheckpointInterval == 0 {
		m.CheckpointInterval = time.Hour
	}
	if m.PartitionInterval == 0 {
		m.PartitionInterval = 24 * time.Hour
	}
	if m.PartitionsAhead == 0 {
		m.PartitionsAhead = 3
	}
	if m.AnomalyInterval == 0 {
		m.AnomalyInterval = 15 * time.Minute
	}
	return m
}

// CheckpointArgs: sign and export a checkpoint of every tenant's chain.
type CheckpointArgs struct{}

// Kind is stable: River stores it with every job.
func (CheckpointArgs) Kind() string { return "audit_checkpoint" }

// InsertOpts puts it on the maintenance queue.
func (CheckpointArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueMaintenance} }

// PartitionArgs: create audit partitions ahead and drop expired ones.
type PartitionArgs struct{}

// Kind is stable: River stores it with every job.
func (PartitionArgs) Kind() string { return "audit_partitions" }

// InsertOpts puts it on the maintenance queue.
func (PartitionArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueMaintenance} }

// AnomalyArgs: run the anomaly detectors.
type AnomalyArgs struct{}

// Kind is stable: River stores it with every job.
func (AnomalyArgs) Kind() string { return "audit_anomaly_scan" }

// InsertOpts puts it on the maintenance queue.
func (AnomalyArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueMaintenance} }

type checkpointWorker struct {
	river.WorkerDefaults[CheckpointArgs]
	db     *store.DB
	m      Maintenance
	now    func() time.Time
	logger *slog.Logger
}

func (w *checkpointWorker) Work(ctx context.Context, _ *river.Job[CheckpointArgs]) error {
	now := w.now().UTC()
	cps, err := audit.WriteCheckpoint(ctx, w.db.Pool(), w.m.SigningKey, now)
	if err != nil {
		return err
	}
	if w.m.CheckpointDir == "" || len(cps) == 0 {
		return nil
	}
	path, err := exportCheckpoints(w.m.CheckpointDir, cps, now)
	if err != nil {
		return err
	}
	if err := audit.MarkExported(ctx, w.db.Pool(), cps, "file:"+path, now); err != nil {
		return err
	}
	w.logger.InfoContext(ctx, "audit checkpoints exported", "count", len(cps))
	return nil
}

// exportCheckpoints appends cps to the day's file and syncs it before they
// count as exported.
func exportCheckpoints(dir string, cps []audit.Checkpoint, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("workers: checkpoint dir: %w", err)
	}
	path := filepath.Join(dir, "checkpoints-"+now.Format("2006-01-02")+".jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("workers: checkpoint file: %w", err)
	}
	if err := audit.WriteCheckpoints(f, cps); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("workers: checkpoint file: %w", err)
	}
	return path, f.Close()
}

type partitionWorker struct {
	river.WorkerDefaults[PartitionArgs]
	m      Maintenance
	now    func() time.Time
	logger *slog.Logger
}

func (w *partitionWorker) Work(ctx context.Context, _ *river.Job[PartitionArgs]) error {
	now := w.now().UTC()
	if refused, err := audit.EnsurePartitions(ctx, w.m.MaintPool, now, w.m.PartitionsAhead); err != nil {
		return err
	} else if len(refused) > 0 {
		w.logger.WarnContext(ctx, "audit partitions not created (rows already in the default partition)", "months", len(refused))
	}
	pol := w.m.Retention
	if pol.Logger == nil {
		pol.Logger = w.logger
	}
	rep, err := audit.DropExpiredPartitions(ctx, w.m.MaintPool, now, pol)
	if err != nil {
		return err
	}
	if d := rep.Dropped(); len(d) > 0 {
		w.logger.InfoContext(ctx, "expired audit partitions dropped", "partitions", d)
	}
	return nil
}

type anomalyWorker struct {
	river.WorkerDefaults[AnomalyArgs]
	db     *store.DB
	m      Maintenance
	now    func() time.Time
	logger *slog.Logger
}

func (w *anomalyWorker) Work(ctx context.Context, _ *river.Job[AnomalyArgs]) error {
	alerts, err := audit.ScanAnomalies(ctx, w.db, w.m.Detectors, w.now().UTC())
	if err != nil {
		return err
	}
	if len(alerts) > 0 {
		w.logger.WarnContext(ctx, "audit anomaly alerts raised", "count", len(alerts))
	}
	return nil
}

// registerMaintenance adds the configured maintenance workers and their periodic schedules.
func registerMaintenance(ws *river.Workers, rc *river.Config, d Deps, m Maintenance) {
	m = m.withDefaults()
	periodic := func(every time.Duration, id string, args river.JobArgs) {
		rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) { return args, nil }, &river.PeriodicJobOpts{ID: id, RunOnStart: true}))
	}
	if m.SigningKey != nil {
		river.AddWorker(ws, &checkpointWorker{db: d.DB, m: m, now: d.Now, logger: d.Logger})
		periodic(m.CheckpointInterval, "audit_checkpoint", CheckpointArgs{})
	}
	if m.MaintPool != nil {
		river.AddWorker(ws, &partitionWorker{m: m, now: d.Now, logger: d.Logger})
		periodic(m.PartitionInterval, "audit_partitions", PartitionArgs{})
	}
	if m.Anomalies {
		river.AddWorker(ws, &anomalyWorker{db: d.DB, m: m, now: d.Now, logger: d.Logger})
		periodic(m.AnomalyInterval, "audit_anomaly_scan", AnomalyArgs{})
	}
}
