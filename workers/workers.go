package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-health/vigil/migrations"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

// Queue names.
const (
	// QueueTriage runs steps 1-2 (trigger, pre-rules, escalation): never the model.
	QueueTriage = "triage"
	// QueueDraft runs steps 3-7 (context, model, grounding, decision).
	QueueDraft       = "draft"
	QueueDelivery    = "delivery"
	QueueMaintenance = "maintenance"
)

// TriageArgs asks for one intake event to be triaged.
type TriageArgs struct {
	TenantID      string `json:"tenant_id"`
	IntakeEventID string `json:"intake_event_id"`
}

// Kind is stable: River stores it with every job.
func (TriageArgs) Kind() string { return "triage" }

// InsertOpts puts triage jobs on their own queue.
func (TriageArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueTriage, MaxAttempts: 10}
}

// DraftArgs asks for the rest of the pipeline (context, draft, grounding,
// decision) for an intake event whose pre-rules have run.
type DraftArgs struct {
	TenantID      string `json:"tenant_id"`
	IntakeEventID string `json:"intake_event_id"`
}

// Kind is stable: River stores it with every job.
func (DraftArgs) Kind() string { return "triage_draft" }

// InsertOpts: its own queue, so a slow model never occupies triage workers;
// unique per intake event, so a retried triage job does not draft twice.
func (DraftArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDraft, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// DeliverArgs asks for one outbox message to be delivered.
type DeliverArgs struct {
	TenantID string `json:"tenant_id"`
	OutboxID string `json:"outbox_id"`
}

// Kind is stable: River stores it with every job.
func (DeliverArgs) Kind() string { return "deliver_escalation" }

// InsertOpts: deliveries retry for a long time with River's backoff.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDelivery, MaxAttempts: 20}
}

// ReescalateArgs is the periodic SLA sweep.
type ReescalateArgs struct{}

// Kind is stable: River stores it with every job.
func (ReescalateArgs) Kind() string { return "reescalate_overdue" }

// InsertOpts puts the sweep on the maintenance queue.
func (ReescalateArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueMaintenance} }

// Processor is the triage pipeline as the workers see it.
type Processor interface {
	Intake(ctx context.Context, tenantID, intakeEventID string) (*triage.Result, error)
	Process(ctx context.Context, tenantID, intakeEventID string) (*triage.Result, error)
}

// Config tunes the River client. Zero values take the defaults noted.
type Config struct {
	// TriageWorkers is the triage queue's concurrency (default 10: jobs read the trigger and run the pre-rules).
	TriageWorkers int
	// DraftWorkers is the draft queue's concurrency (default 20: jobs mostly wait on FHIR and the model).
	DraftWorkers int
	// DeliveryWorkers (default 10).
	DeliveryWorkers int
	// FetchCooldown and FetchPollInterval: River's defaults (100 ms / 1 s) cap
	// throughput near 1,000 jobs/s and add up to a second of latency to an
	// escalation; 5 ms / 50 ms measured here keep both low for little load.
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration
	// JobTimeout bounds one triage job (default 10 min: FHIR retries are bounded at 2).
	JobTimeout time.Duration
	// SLAInterval is how often the re-escalation sweep runs (default 1 min; 0 keeps default, <0 disables).
	SLAInterval time.Duration
	// Maintenance configures the audit trail's periodic jobs (checkpoints, partitions, anomaly scans).
	Maintenance Maintenance
	// InsertOnly builds a client that only enqueues (API processes that run no workers).
	InsertOnly bool
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.TriageWorkers == 0 {
		c.TriageWorkers = 10
	}
	if c.DraftWorkers == 0 {
		c.DraftWorkers = 20
	}
	if c.DeliveryWorkers == 0 {
		c.DeliveryWorkers = 10
	}
	if c.FetchCooldown == 0 {
		c.FetchCooldown = 5 * time.Millisecond
	}
	if c.FetchPollInterval == 0 {
		c.FetchPollInterval = 50 * time.Millisecond
	}
	if c.JobTimeout == 0 {
		c.JobTimeout = 10 * time.Minute
	}
	if c.SLAInterval == 0 {
		c.SLAInterval = time.Minute
	}
	return c
}

// Runner owns the River client and the workers.
type Runner struct {
	Client  *river.Client[pgx.Tx]
	triage  *triageWorker
	draft   *draftWorker
	deliver *deliverWorker
}

// Deps are the runner's collaborators. Processor may be set after New with SetProcessor
// (the pipeline needs the runner's Enqueuer, and the runner needs the pipeline).
type Deps struct {
	DB       *store.DB
	Notifier triage.Notifier
	Now      func() time.Time
	Logger   *slog.Logger
}

// New builds the River client and registers every worker.
func New(d Deps, cfg Config) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if d.DB == nil {
		return nil, errors.New("workers: DB required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		triage:  &triageWorker{logger: d.Logger},
		draft:   &draftWorker{logger: d.Logger},
		deliver: &deliverWorker{db: d.DB, notifier: d.Notifier, now: d.Now},
	}
	ws := river.NewWorkers()
	river.AddWorker(ws, r.triage)
	river.AddWorker(ws, r.draft)
	river.AddWorker(ws, r.deliver)
	river.AddWorker(ws, &reescalateWorker{db: d.DB, runner: r, now: d.Now, logger: d.Logger})
	rc := &river.Config{
		Schema:            migrations.RiverSchema,
		Workers:           ws,
		Logger:            d.Logger,
		FetchCooldown:     cfg.FetchCooldown,
		FetchPollInterval: cfg.FetchPollInterval,
		JobTimeout:        cfg.JobTimeout,
	}
	if !cfg.InsertOnly {
		rc.Queues = map[string]river.QueueConfig{
			QueueTriage:      {MaxWorkers: cfg.TriageWorkers},
			QueueDraft:       {MaxWorkers: cfg.DraftWorkers},
			QueueDelivery:    {MaxWorkers: cfg.DeliveryWorkers},
			QueueMaintenance: {MaxWorkers: 2},
		}
		if cfg.SLAInterval > 0 {
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.SLAInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ReescalateArgs{}, nil }, &river.PeriodicJobOpts{ID: "reescalate_overdue"}))
		}
		registerMaintenance(ws, rc, d, cfg.Maintenance)
	}
	client, err := river.NewClient(riverpgxv5.New(d.DB.Pool()), rc)
	if err != nil {
		return nil, fmt.Errorf("workers: river client: %w", err)
	}
	r.Client = client
	return r, nil
}

// SetProcessor wires the triage pipeline in. Call before Start.
func (r *Runner) SetProcessor(p Processor) { r.triage.proc, r.draft.proc = p, p }

// Start starts fetching and working jobs.
func (r *Runner) Start(ctx context.Context) error {
	if r.triage.proc == nil || r.draft.proc == nil {
		return errors.New("workers: SetProcessor before Start")
	}
	return r.Client.Start(ctx)
}

// Stop waits for running jobs to finish (or ctx to end).
func (r *Runner) Stop(ctx context.Context) error { return r.Client.Stop(ctx) }

// EnqueueTriage implements triage.Enqueuer: the job is inserted in tx.
func (r *Runner) EnqueueTriage(ctx context.Context, tx pgx.Tx, tenantID, intakeEventID string) (int64, error) {
	res, err := r.Client.InsertTx(ctx, tx, TriageArgs{TenantID: tenantID, IntakeEventID: intakeEventID}, nil)
	if err != nil {
		return 0, fmt.Errorf("workers: enqueue triage: %w", err)
	}
	return res.Job.ID, nil
}

// EnqueueDraft implements triage.Enqueuer.
func (r *Runner) EnqueueDraft(ctx context.Context, tx pgx.Tx, tenantID, intakeEventID string) (int64, error) {
	res, err := r.Client.InsertTx(ctx, tx, DraftArgs{TenantID: tenantID, IntakeEventID: intakeEventID}, nil)
	if err != nil {
		return 0, fmt.Errorf("workers: enqueue draft: %w", err)
	}
	return res.Job.ID, nil
}

// EnqueueDelivery implements triage.Enqueuer.
func (r *Runner) EnqueueDelivery(ctx context.Context, tx pgx.Tx, tenantID, outboxID string) (int64, error) {
	res, err := r.Client.InsertTx(ctx, tx, DeliverArgs{TenantID: tenantID, OutboxID: outboxID}, nil)
	if err != nil {
		return 0, fmt.Errorf("workers: enqueue delivery: %w", err)
	}
	return res.Job.ID, nil
}

type triageWorker struct {
	river.WorkerDefaults[TriageArgs]
	proc   Processor
	logger *slog.Logger
}

func (w *triageWorker) Work(ctx context.Context, job *river.Job[TriageArgs]) error {
	if !store.ValidTenantID(job.Args.TenantID) || job.Args.IntakeEventID == "" {
		return river.JobCancel(fmt.Errorf("workers: triage job %d has invalid args", job.ID))
	}
	_, err := w.proc.Intake(ctx, job.Args.TenantID, job.Args.IntakeEventID)
	return jobResult(ctx, w.logger, "triage", job.JobRow, err)
}

// Timeout: the triage step reads two resources and runs the rules; FHIR retries are bounded.
func (w *triageWorker) Timeout(*river.Job[TriageArgs]) time.Duration { return 5 * time.Minute }

type draftWorker struct {
	river.WorkerDefaults[DraftArgs]
	proc   Processor
	logger *slog.Logger
}

func (w *draftWorker) Work(ctx context.Context, job *river.Job[DraftArgs]) error {
	if !store.ValidTenantID(job.Args.TenantID) || job.Args.IntakeEventID == "" {
		return river.JobCancel(fmt.Errorf("workers: draft job %d has invalid args", job.ID))
	}
	_, err := w.proc.Process(ctx, job.Args.TenantID, job.Args.IntakeEventID)
	return jobResult(ctx, w.logger, "triage_draft", job.JobRow, err)
}

// jobResult maps pipeline errors to River outcomes: a missing intake event or
// tenant (or one of another tenant) cannot succeed on retry.
func jobResult(ctx context.Context, logger *slog.Logger, kind string, job *rivertype.JobRow, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		logger.WarnContext(ctx, "job failed; will retry", "kind", kind, "job_id", job.ID, "attempt", job.Attempt, "error", err.Error())
	}
	return err
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	db       *store.DB
	notifier triage.Notifier
	now      func() time.Time
}

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	err := triage.Deliver(ctx, w.db, w.notifier, job.Args.TenantID, job.Args.OutboxID, w.now)
	if errors.Is(err, triage.ErrNotFound) {
		return river.JobCancel(err)
	}
	return err
}

// Timeout keeps one slow webhook from holding a worker.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return 30 * time.Second }

type reescalateWorker struct {
	river.WorkerDefaults[ReescalateArgs]
	db     *store.DB
	runner *Runner
	now    func() time.Time
	logger *slog.Logger
}

func (w *reescalateWorker) Work(ctx context.Context, _ *river.Job[ReescalateArgs]) error {
	var tenants []*store.Tenant
	if err := w.db.Global(ctx, func(tx pgx.Tx) error {
		var err error
		tenants, err = store.ListTenants(ctx, tx)
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for _, t := range tenants {
		n, err := triage.ReescalateOverdue(ctx, w.db, w.runner, t.ID, w.now().UTC())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			w.logger.InfoContext(ctx, "re-escalated overdue items", "tenant_id", t.ID, "count", n)
		}
	}
	return errors.Join(errs...)
}
