package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/store"
)

// VerifyOptions says what to verify and against which anchors.
type VerifyOptions struct {
	// TenantID limits verification to one tenant; "" means every tenant in the registry.
	TenantID string
	// Since starts its tenant's verification at a trusted checkpoint instead
	// of the genesis record: the record at Since.Seq must hash to Since.Hash.
	Since *Checkpoint
	// PublicKey verifies checkpoint signatures (Since, Checkpoints and the
	// stored ones). Without it signatures are not checked.
	PublicKey ed25519.PublicKey
	// Checkpoints are exported checkpoints to check the chain against (any tenants).
	Checkpoints []Checkpoint
}

// Reasons a record fails verification.
const (
	ReasonHashMismatch    = "hash mismatch"
	ReasonSequenceGap     = "sequence gap (row deleted?)"
	ReasonDuplicateSeq    = "duplicate sequence number (row inserted?)"
	ReasonPrevHash        = "prev_hash does not link"
	ReasonCheckpoint      = "checkpoint mismatch"
	ReasonTruncated       = "truncated tail (chain ends before a checkpoint)"
	ReasonHeadMismatch    = "chain head does not match the last record"
	ReasonSignature       = "checkpoint signature invalid"
	ReasonUnknownEncoding = "unknown encoding version"
	ReasonSinceNotFound   = "since-checkpoint record missing"
	ReasonRetentionMark   = "retention mark over records still present"
)

// BadRecord names the first record that fails verification.
type BadRecord struct {
	Seq    int64
	Reason string
}

// TenantReport is one tenant's verification result.
type TenantReport struct {
	TenantID string
	// From is the first sequence number verified: 1, or the one after a
	// Since checkpoint or after the records retention dropped.
	From int64
	// Checked counts the records verified.
	Checked int64
	// LastSeq is the last sequence number read.
	LastSeq int64
	// FirstBad is nil when the chain verifies.
	FirstBad *BadRecord
	// Anchored is the highest sequence number covered by a checkpoint that
	// matched (signature-checked when a public key was given).
	Anchored int64
	// Unanchored counts the records after the last matching checkpoint.
	Unanchored int64
}

// Report is the result of Verify.
type Report struct {
	OK      bool
	Tenants []TenantReport
}

// String returns "OK" or names the first broken record per tenant, one line each.
func (r *Report) String() string {
	if r.OK {
		return "OK"
	}
	var lines []string
	for _, t := range r.Tenants {
		if t.FirstBad != nil {
			lines = append(lines, fmt.Sprintf("tenant %s: record seq %d broken: %s", t.TenantID, t.FirstBad.Seq, t.FirstBad.Reason))
		}
	}
	return strings.Join(lines, "\n")
}

// Err returns nil when r is OK, else an error wrapping ErrChainBroken.
func (r *Report) Err() error {
	if r.OK {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrChainBroken, strings.ReplaceAll(r.String(), "\n", "; "))
}

// Verifier checks chains. It is immutable after NewVerifier and safe for concurrent use.
type Verifier struct {
	pub         ed25519.PublicKey
	since       *Checkpoint
	checkpoints map[string][]Checkpoint
}

// NewVerifier copies opts' anchors into a Verifier.
func NewVerifier(opts VerifyOptions) *Verifier {
	v := &Verifier{checkpoints: map[string][]Checkpoint{}}
	if len(opts.PublicKey) > 0 {
		v.pub = append(ed25519.PublicKey(nil), opts.PublicKey...)
	}
	if opts.Since != nil {
		s := *opts.Since
		v.since = &s
	}
	for _, c := range opts.Checkpoints {
		v.checkpoints[c.TenantID] = append(v.checkpoints[c.TenantID], c)
	}
	return v
}

// Verify checks every tenant's chain (or opts.TenantID's) in pool, which may
// connect as the owner or as the app role. It returns the report and, when a
// chain is broken, an error wrapping ErrChainBroken; other errors mean the
// chain could not be read.
func Verify(ctx context.Context, pool *pgxpool.Pool, opts VerifyOptions) (*Report, error) {
	v := NewVerifier(opts)
	tenants := []string{opts.TenantID}
	if opts.TenantID == "" {
		var err error
		if tenants, err = listTenants(ctx, pool); err != nil {
			return nil, err
		}
	}
	rep := &Report{OK: true}
	for _, t := range tenants {
		tr, err := v.VerifyTenant(ctx, pool, t)
		if err != nil {
			return nil, err
		}
		if tr.FirstBad != nil {
			rep.OK = false
		}
		rep.Tenants = append(rep.Tenants, tr)
	}
	return rep, rep.Err()
}

// anchor is a checkpoint the verifier holds the chain to.
type anchor struct {
	seq      int64
	hash     []byte
	external bool
}

// VerifyTenant checks one tenant's chain in a read-only transaction.
func (v *Verifier) VerifyTenant(ctx context.Context, pool *pgxpool.Pool, tenant string) (TenantReport, error) {
	tr := TenantReport{TenantID: tenant}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := store.SetTenant(ctx, tx, tenant); err != nil {
			return err
		}
		return v.verifyTx(ctx, tx, tenant, &tr)
	})
	if err != nil {
		return tr, fmt.Errorf("audit: verify tenant %s: %w", tenant, err)
	}
	return tr, nil
}

func (v *Verifier) verifyTx(ctx context.Context, tx pgx.Tx, tenant string, tr *TenantReport) error {
	bad := func(seq int64, reason string) { tr.FirstBad = &BadRecord{Seq: seq, Reason: reason} }

	// Anchors: exported checkpoints first (they are the ones a superuser cannot rewrite), then stored ones.
	var anchors []anchor
	for _, c := range v.checkpoints[tenant] {
		if v.pub != nil && !c.VerifySignature(v.pub) {
			bad(c.Seq, ReasonSignature)
			return nil
		}
		anchors = append(anchors, anchor{seq: c.Seq, hash: c.Hash, external: true})
	}
	stored, err := ListCheckpoints(ctx, tx, tenant)
	if err != nil {
		return err
	}
	for _, c := range stored {
		if v.pub != nil {
			if c.KeyID != KeyID(v.pub) {
				continue // another key's checkpoint: not ours to judge
			}
			if !c.VerifySignature(v.pub) {
				bad(c.Seq, ReasonSignature)
				return nil
			}
		}
		anchors = append(anchors, anchor{seq: c.Seq, hash: c.Hash})
	}
	sort.SliceStable(anchors, func(i, j int) bool { return anchors[i].seq < anchors[j].seq })

	// Where to start: a trusted checkpoint, the retention mark, or genesis.
	expect := int64(1)
	prev := genesis
	var sinceCheck *Checkpoint
	if s := v.since; s != nil && s.TenantID == tenant {
		if v.pub != nil && !s.VerifySignature(v.pub) {
			bad(s.Seq, ReasonSignature)
			return nil
		}
		expect, prev = s.Seq+1, s.Hash
		if s.Seq > 0 {
			sinceCheck = s
		}
		tr.Anchored = s.Seq
	} else {
		var seq int64
		var h []byte
		err := tx.QueryRow(ctx, `SELECT through_seq, through_hash FROM audit_retention_marks
			WHERE tenant_id = $1 ORDER BY through_seq DESC LIMIT 1`, tenant).Scan(&seq, &h)
		if err == nil {
			// Retention removes whole prefixes: a mark over rows still present was not made by retention.
			var left bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_events WHERE tenant_id = $1 AND seq <= $2)`,
				tenant, seq).Scan(&left); err != nil {
				return err
			}
			if left {
				bad(seq, ReasonRetentionMark)
				return nil
			}
			expect, prev = seq+1, h
			tr.Anchored = seq
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	tr.From = expect
	start := expect
	if sinceCheck != nil {
		start = sinceCheck.Seq
	}
	tr.LastSeq = expect - 1

	ai := 0
	for ai < len(anchors) && anchors[ai].seq < expect {
		ai++ // anchors before the start are not checked
	}
	done := errors.New("done")
	err = Records(ctx, tx, tenant, start, func(r *Record) error {
		if sinceCheck != nil {
			if r.Seq != sinceCheck.Seq {
				bad(sinceCheck.Seq, ReasonSinceNotFound)
				return done
			}
			if !bytes.Equal(r.Hash, sinceCheck.Hash) {
				bad(r.Seq, ReasonCheckpoint)
				return done
			}
			sinceCheck = nil
			return nil
		}
		switch {
		case r.Seq < expect:
			bad(r.Seq, ReasonDuplicateSeq)
			return done
		case r.Seq > expect:
			bad(expect, ReasonSequenceGap)
			return done
		}
		if !bytes.Equal(r.PrevHash, prev) {
			bad(r.Seq, ReasonPrevHash)
			return done
		}
		canon, err := EncodeCanonical(r)
		if errors.Is(err, ErrUnknownEncoding) {
			bad(r.Seq, ReasonUnknownEncoding)
			return done
		}
		if err != nil {
			bad(r.Seq, ReasonHashMismatch)
			return done
		}
		if !bytes.Equal(ChainHash(prev, canon), r.Hash) {
			bad(r.Seq, ReasonHashMismatch)
			return done
		}
		for ai < len(anchors) && anchors[ai].seq == r.Seq {
			if !bytes.Equal(anchors[ai].hash, r.Hash) {
				bad(r.Seq, ReasonCheckpoint)
				return done
			}
			tr.Anchored = r.Seq
			ai++
		}
		prev = r.Hash
		tr.Checked++
		tr.LastSeq = r.Seq
		expect++
		return nil
	})
	if errors.Is(err, done) {
		return nil
	}
	if err != nil {
		return err
	}
	if sinceCheck != nil {
		bad(sinceCheck.Seq, ReasonSinceNotFound)
		return nil
	}
	if ai < len(anchors) {
		bad(tr.LastSeq+1, ReasonTruncated)
		return nil
	}
	tr.Unanchored = tr.LastSeq - tr.Anchored
	var hseq int64
	var hhash []byte
	err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit_heads WHERE tenant_id = $1`, tenant).Scan(&hseq, &hhash)
	if errors.Is(err, pgx.ErrNoRows) {
		if tr.LastSeq > 0 {
			bad(tr.LastSeq, ReasonHeadMismatch)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if hseq > tr.LastSeq {
		bad(tr.LastSeq+1, ReasonSequenceGap)
	} else if hseq != tr.LastSeq || !bytes.Equal(hhash, prev) {
		bad(tr.LastSeq, ReasonHeadMismatch)
	}
	return nil
}

// Records calls fn for each of tenant's records with seq >= from, in chain
// order, inside tx (scoped to tenant). The *Record is reused between calls.
func Records(ctx context.Context, tx pgx.Tx, tenant string, from int64, fn func(*Record) error) error {
	rows, err := tx.Query(ctx, `SELECT `+recordCols+`
		FROM audit_events WHERE tenant_id = $1 AND seq >= $2 ORDER BY seq, occurred_at`, tenant, from)
	if err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	defer rows.Close()
	var r Record
	r.TenantID = tenant
	for rows.Next() {
		if err := scanRecord(rows, &r); err != nil {
			return fmt.Errorf("audit: read records: %w", err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	return nil
}
