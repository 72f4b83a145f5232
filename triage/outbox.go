package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/store"
)

// ErrNoNotifier means the tenant has no notifier URL: delivery cannot succeed until one is configured.
var ErrNoNotifier = errors.New("triage: tenant has no notifier_url")

// Notifier delivers an escalation message (ids only, never clinical content).
type Notifier interface {
	Notify(ctx context.Context, url string, payload []byte) error
}

// WebhookNotifier POSTs the payload as JSON. Non-2xx answers are errors, so the job retries.
type WebhookNotifier struct {
	Client *http.Client
	// CheckURL refuses URLs the deployment does not allow (e.g. non-TLS); nil allows all.
	CheckURL func(string) error
}

// Notify implements Notifier.
func (w *WebhookNotifier) Notify(ctx context.Context, url string, payload []byte) error {
	if w.CheckURL != nil {
		if err := w.CheckURL(url); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("triage: notifier request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("triage: notifier: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("triage: notifier answered %d", resp.StatusCode)
	}
	return nil
}

// Deliver sends one outbox message to the tenant's notifier and marks it
// delivered, with its audit event. A failed attempt is recorded and returned,
// so the job is retried; an already delivered message is not sent again.
func Deliver(ctx context.Context, db *store.DB, n Notifier, tenantID, outboxID string, now func() time.Time) error {
	var payload []byte
	var status, notifierURL string
	err := db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		t, err := store.GetTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		notifierURL = t.Config.NotifierURL
		return tx.QueryRow(ctx, `SELECT payload, status FROM outbox WHERE id::text = $1`, outboxID).Scan(&payload, &status)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("triage: outbox %s: %w", outboxID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("triage: deliver: %w", err)
	}
	if status == "delivered" {
		return nil
	}
	var sendErr error
	if notifierURL == "" {
		sendErr = ErrNoNotifier
	} else {
		var body map[string]any
		if err := json.Unmarshal(payload, &body); err != nil {
			return fmt.Errorf("triage: deliver: payload: %w", err)
		}
		body["tenant_id"], body["outbox_id"] = tenantID, outboxID
		b, _ := json.Marshal(body)
		sendErr = n.Notify(ctx, notifierURL, b)
	}
	at := now().UTC()
	err = db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		var decisionID string
		if sendErr == nil {
			if err := tx.QueryRow(ctx, `UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = ''
				WHERE id::text = $1 RETURNING decision_id::text`, outboxID, at).Scan(&decisionID); err != nil {
				return err
			}
		} else {
			if err := tx.QueryRow(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id::text = $1 RETURNING decision_id::text`,
				outboxID, safeErr(sendErr)).Scan(&decisionID); err != nil {
				return err
			}
		}
		outcome := "success"
		if sendErr != nil {
			outcome = "failure"
		}
		e := systemActor.event(tenantID, at, audit.ActionExecute, "escalation.deliver", outcome)
		e.DecisionID = decisionID
		e.Detail = map[string]any{"outbox_id": outboxID}
		if sendErr != nil {
			e.Detail["error"] = safeErr(sendErr)
		}
		_, err := audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return fmt.Errorf("triage: deliver: record: %w", err)
	}
	return sendErr
}

// safeErr keeps only our own error text: notifier errors carry no PHI (the payload holds ids only).
func safeErr(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// ReescalateOverdue finds escalations nobody acknowledged within the tenant's
// SLA and queues another notification for each (at most once per SLA period).
func ReescalateOverdue(ctx context.Context, db *store.DB, enq Enqueuer, tenantID string, now time.Time) (int, error) {
	n := 0
	err := db.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		t, err := store.GetTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		sla := time.Duration(t.Config.AckSLAMinutes) * time.Minute
		rows, err := tx.Query(ctx, `SELECT id::text, decision_id::text, priority, queue FROM review_items
			WHERE ack_required AND acked_at IS NULL AND created_at < $1 AND coalesce(last_escalated_at, created_at) < $1
			ORDER BY created_at LIMIT 200 FOR UPDATE SKIP LOCKED`, now.Add(-sla))
		if err != nil {
			return err
		}
		type due struct{ id, decision, priority, queue string }
		var items []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.id, &d.decision, &d.priority, &d.queue); err != nil {
				rows.Close()
				return err
			}
			items = append(items, d)
		}
		rows.Close()
		for _, d := range items {
			payload, _ := json.Marshal(map[string]any{"decision_id": d.decision, "priority": d.priority, "queue": d.queue,
				"kind": "re-escalation", "reason": "not acknowledged within SLA"})
			var outboxID string
			if err := tx.QueryRow(ctx, `INSERT INTO outbox (tenant_id, decision_id, kind, payload) VALUES ($1, $2, 're-escalation', $3) RETURNING id::text`,
				tenantID, d.decision, payload).Scan(&outboxID); err != nil {
				return err
			}
			if _, err := enq.EnqueueDelivery(ctx, tx, tenantID, outboxID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE review_items SET escalations = escalations + 1, last_escalated_at = $2 WHERE id::text = $1`, d.id, now); err != nil {
				return err
			}
			e := systemActor.event(tenantID, now, audit.ActionExecute, "escalation.reescalate", "success")
			e.DecisionID = d.decision
			e.Detail = map[string]any{"review_item_id": d.id, "sla_minutes": t.Config.AckSLAMinutes}
			if _, err := audit.Append(ctx, tx, e); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("triage: re-escalate: %w", err)
	}
	return n, nil
}
