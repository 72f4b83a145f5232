package llm

import (
	"sync"
	"time"
)

// breaker is a consecutive-failure circuit breaker. Closed: calls pass and
// failures are counted; at threshold it opens. Open: calls fail fast until
// cooldown has passed, then one probe is let through (half-open); its
// success closes the breaker, its failure re-opens it for another cooldown.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	failures int
	openedAt time.Time
	open     bool
	probing  bool
}

// allow reports whether a call may proceed.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || b.now().Sub(b.openedAt) < b.cooldown {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.open, b.probing = 0, false, false
}

func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.probing || b.failures >= b.threshold {
		b.open, b.probing, b.openedAt = true, false, b.now()
	}
}

// release ends a probe that produced neither success nor failure (for
// example the caller's context was cancelled).
func (b *breaker) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

// State is the circuit breaker's state, for metrics and /readyz.
type State string

// Breaker states.
const (
	StateClosed   State = "closed"
	StateOpen     State = "open"
	StateHalfOpen State = "half-open"
)

func (b *breaker) state() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return StateClosed
	case b.probing || b.now().Sub(b.openedAt) >= b.cooldown:
		return StateHalfOpen
	default:
		return StateOpen
	}
}
