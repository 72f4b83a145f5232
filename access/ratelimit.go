package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigil-health/vigil/store"
)

// LimiterConfig configures a Limiter. NewLimiter copies it.
type LimiterConfig struct {
	// Name separates limiters sharing the rate_limits table ("api.client",
	// "intake.ip"). Instances that must share one budget use the same Name,
	// Limit and Window. Default "default".
	Name string
	// Limit is the number of requests allowed per Window. Required.
	Limit int
	// Window is the window length. Required; at least one second.
	Window time.Duration
	// Secret keys the HMAC that turns a key into the stored hash. Optional,
	// but set it when keys are guessable (IP addresses), so the table cannot
	// be reversed by hashing candidates. All instances must share it.
	Secret []byte
	// Now is the clock. Default time.Now. Instances should have roughly
	// synchronised clocks (NTP); the window arithmetic tolerates drift.
	Now func() time.Time
}

// Limiter is a sliding-window rate limiter whose counters live in the
// global rate_limits table, so every Vigil instance on the database shares
// one budget per key without another component (and another BAA).
//
// The window is approximated the usual way: the previous fixed window's
// count, weighted by how much of it still overlaps the sliding window, plus
// the current window's count. Every call counts, allowed or not (counts
// are capped at Limit+1 per window so a flood cannot lock a key out for
// longer than about one window after it stops). One statement per call.
// Safe for concurrent use.
type Limiter struct {
	db  *store.DB
	cfg LimiterConfig
}

// NewLimiter returns a Limiter on db.
func NewLimiter(db *store.DB, cfg LimiterConfig) (*Limiter, error) {
	if db == nil {
		return nil, errors.New("access: limiter: db required")
	}
	if cfg.Limit <= 0 {
		return nil, errors.New("access: limiter config: Limit must be positive")
	}
	if cfg.Window < time.Second {
		return nil, errors.New("access: limiter config: Window must be at least 1s")
	}
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	return &Limiter{db: db, cfg: cfg}, nil
}

// keyHash is HMAC-SHA256(secret, name ‖ 0 ‖ key): the table never holds
// the key itself.
func (l *Limiter) keyHash(key string) []byte {
	m := hmac.New(sha256.New, l.cfg.Secret)
	m.Write([]byte(l.cfg.Name))
	m.Write([]byte{0})
	m.Write([]byte(key))
	return m.Sum(nil)
}

// Allow counts one request for key and reports whether it is within the
// limit. When it is not, retryAfter (rounded up to whole seconds, at least
// 1s) is when a request is next expected to pass, for a Retry-After header.
// On a database error the caller decides whether to fail open or closed.
func (l *Limiter) Allow(ctx context.Context, key string) (allowed bool, retryAfter time.Duration, err error) {
	now := l.cfg.Now()
	w := l.cfg.Window
	start := now.Truncate(w)
	var prev, cur int
	// One statement: insert, or roll the window forward (the previous
	// window's count carries over only if it is the adjacent window), then
	// increment. GREATEST keeps a lagging instance from moving a window back.
	err = l.db.Pool().QueryRow(ctx, `
		INSERT INTO rate_limits AS r (key_hash, window_start, prev_count, count, expires_at)
		VALUES ($1, $2::timestamptz, 0, 1, $2::timestamptz + $3::interval * 2)
		ON CONFLICT (key_hash) DO UPDATE SET
			prev_count = CASE
				WHEN EXCLUDED.window_start <= r.window_start THEN r.prev_count
				WHEN EXCLUDED.window_start = r.window_start + $3::interval THEN r.count
				ELSE 0 END,
			count = CASE
				WHEN EXCLUDED.window_start <= r.window_start THEN LEAST(r.count + 1, $4::int)
				ELSE 1 END,
			window_start = GREATEST(r.window_start, EXCLUDED.window_start),
			expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at)
		RETURNING prev_count, count`,
		l.keyHash(key), start, w, l.cfg.Limit+1,
	).Scan(&prev, &cur)
	if err != nil {
		return false, 0, fmt.Errorf("access: rate limit: %w", err)
	}
	elapsed := now.Sub(start)
	frac := 1 - float64(elapsed)/float64(w) // share of the previous window still in view
	if float64(prev)*frac+float64(cur) <= float64(l.cfg.Limit) {
		return true, 0, nil
	}
	// Denied. If this window alone is over, wait for the next one (where
	// the carried-over count fades linearly); otherwise wait until the
	// previous window has faded enough.
	var wait time.Duration
	limit := float64(l.cfg.Limit)
	if float64(cur) > limit || prev == 0 {
		wait = w - elapsed
	} else {
		// prev*(1-f) + cur <= limit  ⇔  f >= 1 - (limit-cur)/prev
		need := 1 - (limit-float64(cur))/float64(prev)
		wait = time.Duration(need*float64(w)) - elapsed
	}
	return false, roundUpSecond(wait), nil
}

func roundUpSecond(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

// CleanupRateLimits deletes rate-limit rows that no window can use any more
// (older than two windows). Run it periodically from one place (a River
// periodic job, or a ticker in one instance); it is idempotent.
func CleanupRateLimits(ctx context.Context, db *store.DB, now time.Time) (int64, error) {
	tag, err := db.Pool().Exec(ctx, `DELETE FROM rate_limits WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("access: rate limit cleanup: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Cleanup is CleanupRateLimits on l's database and clock.
func (l *Limiter) Cleanup(ctx context.Context) (int64, error) {
	return CleanupRateLimits(ctx, l.db, l.cfg.Now())
}
