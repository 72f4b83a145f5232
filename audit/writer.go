package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/store"
)

// WriterConfig configures a Writer. Zero fields take the documented defaults.
type WriterConfig struct {
	// MaxBatch is the most events written in one transaction (default 500).
	MaxBatch int
	// MaxDelay is how long a batch waits for more events after its first
	// (default 2ms). Under load batches fill before it expires.
	MaxDelay time.Duration
	// Concurrency is the number of transactions in flight (default 4). Each
	// tenant is served by one of them (by hash), so batches never wait on
	// one another's chain-head lock.
	Concurrency int
	// QueueSize bounds the events waiting per worker (default 8192); Append
	// blocks (respecting its context) when the queue is full.
	QueueSize int
	// Timeout bounds each batch transaction (default 30s).
	Timeout time.Duration
	// Logger receives batch failures (default: discard).
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c WriterConfig) WithDefaults() WriterConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 2 * time.Millisecond
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 8192
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ErrWriterClosed is returned by Writer.Append after Close.
var ErrWriterClosed = errors.New("audit: writer closed")

// Writer is a group-commit writer for events that need not share the
// caller's transaction: it collects events from many goroutines and appends
// them, per tenant, many to a transaction under one chain-head lock. Append
// returns only once its event has committed. Safe for concurrent use.
type Writer struct {
	db     *store.DB
	cfg    WriterConfig
	queues []chan *request
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

type request struct {
	ev   Event
	done chan result
}

type result struct {
	a   Appended
	err error
}

// NewWriter starts a Writer appending through db (the app role's).
func NewWriter(db *store.DB, cfg WriterConfig) *Writer {
	cfg = cfg.WithDefaults()
	w := &Writer{db: db, cfg: cfg}
	for i := 0; i < cfg.Concurrency; i++ {
		q := make(chan *request, cfg.QueueSize)
		w.queues = append(w.queues, q)
		w.wg.Add(1)
		go w.loop(q)
	}
	return w
}

// Append queues ev and waits until it is committed (or fails). A cancelled
// ctx stops the wait, not the write: the event may still be committed.
func (w *Writer) Append(ctx context.Context, ev Event) (Appended, error) {
	if err := ev.Validate(); err != nil {
		return Appended{}, err
	}
	req := &request{ev: ev, done: make(chan result, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return Appended{}, ErrWriterClosed
	}
	select {
	case w.queues[shard(ev.TenantID, len(w.queues))] <- req:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return Appended{}, fmt.Errorf("audit: writer: %w", ctx.Err())
	}
	select {
	case r := <-req.done:
		return r.a, r.err
	case <-ctx.Done():
		return Appended{}, fmt.Errorf("audit: writer: %w", ctx.Err())
	}
}

// Close stops accepting events, writes those queued and waits for the workers.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		for _, q := range w.queues {
			close(q)
		}
	}
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

func shard(tenant string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return int(h.Sum32() % uint32(n))
}

func (w *Writer) loop(queue chan *request) {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*request, 0, w.cfg.MaxBatch)
	for {
		first, ok := <-queue
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		timer.Reset(w.cfg.MaxDelay)
	fill:
		for len(batch) < w.cfg.MaxBatch {
			select {
			case r, ok := <-queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			case <-timer.C:
				break fill
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		w.flush(batch)
	}
}

// flush writes a batch, one transaction per tenant.
func (w *Writer) flush(batch []*request) {
	byTenant := map[string][]*request{}
	var order []string
	for _, r := range batch {
		if _, ok := byTenant[r.ev.TenantID]; !ok {
			order = append(order, r.ev.TenantID)
		}
		byTenant[r.ev.TenantID] = append(byTenant[r.ev.TenantID], r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	for _, tenant := range order {
		reqs := byTenant[tenant]
		evs := make([]Event, len(reqs))
		for i, r := range reqs {
			evs[i] = r.ev
		}
		var out []Appended
		err := w.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
			var err error
			out, err = appendEvents(ctx, tx, tenant, evs)
			return err
		})
		if err != nil {
			w.cfg.Logger.Error("audit: batch append failed", "tenant_id", tenant, "events", len(evs), "error", err)
			err = fmt.Errorf("audit: writer: %w", err)
		}
		for i, r := range reqs {
			if err != nil {
				r.done <- result{err: err}
			} else {
				r.done <- result{a: out[i]}
			}
		}
	}
}
