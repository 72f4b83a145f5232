package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/store"
)

// Append writes ev into its tenant's hash chain inside tx, which the caller
// has already scoped to ev.TenantID (store.SetTenant or store.DB.InTenant),
// so a change and its audit record commit together. It locks the tenant's
// chain head until tx ends; keep such transactions short. In a REPEATABLE
// READ or SERIALIZABLE transaction a concurrent append for the same tenant
// makes Append fail with a serialization failure (SQLSTATE 40001): retry the
// transaction, or use READ COMMITTED (the default).
func Append(ctx context.Context, tx pgx.Tx, ev Event) (Appended, error) {
	out, err := appendEvents(ctx, tx, ev.TenantID, []Event{ev})
	if err != nil {
		return Appended{}, err
	}
	return out[0], nil
}

// AppendMany appends events of one tenant, in order, inside tx.
func AppendMany(ctx context.Context, tx pgx.Tx, events []Event) ([]Appended, error) {
	if len(events) == 0 {
		return nil, nil
	}
	tenant := events[0].TenantID
	for i := range events {
		if events[i].TenantID != tenant {
			return nil, fmt.Errorf("%w: AppendMany takes one tenant's events", ErrInvalidEvent)
		}
	}
	return appendEvents(ctx, tx, tenant, events)
}

// ReadAudited answers a read only if its audit record commits: it runs, in one
// transaction scoped to ev.TenantID, Append(ev) and then read. When Append,
// read or the commit fails, it returns the error and the caller must not
// release whatever read produced. A failed read rolls its record back with
// it; audit the failure separately (Outcome "failure") where it matters.
func ReadAudited(ctx context.Context, db *store.DB, ev Event, read func(pgx.Tx) error) error {
	err := db.InTenant(ctx, ev.TenantID, func(tx pgx.Tx) error {
		if _, err := Append(ctx, tx, ev); err != nil {
			return err
		}
		return read(tx)
	})
	if err != nil {
		return fmt.Errorf("audit: audited read: %w", err)
	}
	return nil
}

type head struct {
	seq  int64
	hash []byte
	at   time.Time
}

func appendEvents(ctx context.Context, tx pgx.Tx, tenant string, events []Event) ([]Appended, error) {
	recs := make([]Record, len(events))
	details := make([]string, len(events))
	for i := range events {
		ev := events[i]
		if err := ev.Validate(); err != nil {
			return nil, err
		}
		d := ev.Detail
		if d == nil {
			d = map[string]any{}
		}
		dj, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("%w: detail: %w", ErrInvalidEvent, err)
		}
		details[i] = string(dj)
		ev.OccurredAt = ev.OccurredAt.UTC().Truncate(time.Microsecond)
		ev.DecisionID = strings.ToLower(ev.DecisionID)
		if ev.Resources == nil {
			ev.Resources = []string{}
		}
		recs[i] = Record{Event: ev, ID: newUUID(), EncVersion: EncVersion}
	}

	// One round trip: create + lock the head, and let PostgreSQL normalise the
	// detail JSON (the hash covers jsonb's own text form, see EncodeCanonical).
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING`, tenant, genesis)
	b.Queue(`SELECT seq, hash, occurred_at FROM audit_heads WHERE tenant_id = $1 FOR UPDATE`, tenant)
	b.Queue(`SELECT d::jsonb::text FROM unnest($1::text[]) WITH ORDINALITY AS u(d, n) ORDER BY n`, details)
	br := tx.SendBatch(ctx, b)
	var h head
	var at *time.Time
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&h.seq, &h.hash, &at)
	}
	if at != nil {
		h.at = *at
	}
	if err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		if err == nil {
			i := 0
			for rows.Next() && i < len(recs) {
				if err = rows.Scan(&recs[i].DetailJSON); err != nil {
					break
				}
				i++
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("audit: append: lock chain head: %w", err)
	}

	out := make([]Appended, len(recs))
	prev := h.hash
	last := h.at
	b = &pgx.Batch{}
	for i := range recs {
		r := &recs[i]
		if r.OccurredAt.Before(last) {
			r.OccurredAt = last
		}
		last = r.OccurredAt
		r.Seq = h.seq + int64(i) + 1
		r.PrevHash = prev
		canon, err := EncodeCanonical(r)
		if err != nil {
			return nil, err
		}
		r.Hash = ChainHash(prev, canon)
		prev = r.Hash
		out[i] = Appended{Seq: r.Seq, Hash: r.Hash, ID: r.ID}
		queueInsert(b, r)
	}
	b.Queue(`UPDATE audit_heads SET seq = $2, hash = $3, occurred_at = $4, updated_at = now() WHERE tenant_id = $1`,
		tenant, recs[len(recs)-1].Seq, prev, last)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("audit: append: insert: %w", err)
	}
	return out, nil
}

const insertSQL = `INSERT INTO audit_events (tenant_id, seq, id, occurred_at, actor, actor_role, client_id, on_behalf_of,
	action, verb, outcome, patient_ref, resources, source_ip, user_agent, purpose, request_id, decision_id, detail,
	enc_version, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, NULLIF($18, '')::uuid, $19::jsonb, $20, $21, $22)`

func queueInsert(b *pgx.Batch, r *Record) {
	b.Queue(insertSQL, r.TenantID, r.Seq, r.ID, r.OccurredAt, r.Actor, r.ActorRole, r.ClientID, r.OnBehalfOf,
		string(r.Action), r.Verb, r.Outcome, r.PatientRef, r.Resources, r.SourceIP, r.UserAgent, r.Purpose, r.RequestID,
		r.DecisionID, r.DetailJSON, r.EncVersion, r.PrevHash, r.Hash)
}
