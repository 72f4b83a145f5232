package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	stored, err := ListCheckpoints(ctx, tx, tenant)
	if err != nil {
		return err
	}
	c := v.newChecker(tenant, tr, stored)
	if tr.FirstBad != nil {
		return nil
	}
	if c.since == nil {
		// After retention, the chain resumes where the dropped partitions ended.
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
				c.bad(seq, ReasonRetentionMark)
				return nil
			}
			c.startAt(seq, h)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	done := errors.New("done")
	err = Records(ctx, tx, tenant, c.from(), func(r *Record) error {
		if !c.next(r) {
			return done
		}
		return nil
	})
	if errors.Is(err, done) {
		return nil
	}
	if err != nil {
		return err
	}
	if !c.finish() {
		return nil
	}
	var hseq int64
	var hhash []byte
	err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit_heads WHERE tenant_id = $1`, tenant).Scan(&hseq, &hhash)
	if errors.Is(err, pgx.ErrNoRows) {
		if tr.LastSeq > 0 {
			c.bad(tr.LastSeq, ReasonHeadMismatch)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if hseq > tr.LastSeq {
		c.bad(tr.LastSeq+1, ReasonSequenceGap)
	} else if hseq != tr.LastSeq || !bytes.Equal(hhash, c.prev) {
		c.bad(tr.LastSeq, ReasonHeadMismatch)
	}
	return nil
}

// checker verifies one tenant's records fed in chain order.
type checker struct {
	tr      *TenantReport
	anchors []anchor
	ai      int
	since   *Checkpoint // the Since checkpoint, until its record (or the one after) is seen
	expect  int64
	prev    []byte
}

// newChecker gathers tenant's anchors (exported checkpoints, then stored
// ones, signature-checked when v has a key) and starts at Since or genesis.
// A bad signature is recorded in tr.FirstBad.
func (v *Verifier) newChecker(tenant string, tr *TenantReport, stored []Checkpoint) *checker {
	c := &checker{tr: tr}
	for _, cp := range v.checkpoints[tenant] {
		if v.pub != nil && !cp.VerifySignature(v.pub) {
			c.bad(cp.Seq, ReasonSignature)
			return c
		}
		c.anchors = append(c.anchors, anchor{seq: cp.Seq, hash: cp.Hash, external: true})
	}
	for _, cp := range stored {
		if v.pub != nil {
			if cp.KeyID != KeyID(v.pub) {
				continue // another key's checkpoint: not ours to judge
			}
			if !cp.VerifySignature(v.pub) {
				c.bad(cp.Seq, ReasonSignature)
				return c
			}
		}
		c.anchors = append(c.anchors, anchor{seq: cp.Seq, hash: cp.Hash})
	}
	sort.SliceStable(c.anchors, func(i, j int) bool { return c.anchors[i].seq < c.anchors[j].seq })
	c.startAt(0, genesis)
	if s := v.since; s != nil && s.TenantID == tenant {
		if v.pub != nil && !s.VerifySignature(v.pub) {
			c.bad(s.Seq, ReasonSignature)
			return c
		}
		c.startAt(s.Seq, s.Hash)
		if s.Seq > 0 {
			c.since = s
		}
	}
	return c
}

// startAt makes the record after seq, linking to hash, the first to verify.
func (c *checker) startAt(seq int64, hash []byte) {
	c.expect, c.prev = seq+1, hash
	c.tr.From, c.tr.LastSeq, c.tr.Anchored = seq+1, seq, seq
	c.ai = 0
	for c.ai < len(c.anchors) && c.anchors[c.ai].seq <= seq {
		c.ai++ // anchors before the start cannot be checked
	}
}

// from is the first sequence number to read (the Since record itself, when set).
func (c *checker) from() int64 {
	if c.since != nil {
		return c.since.Seq
	}
	return c.expect
}

func (c *checker) bad(seq int64, reason string) {
	if c.tr.FirstBad == nil {
		c.tr.FirstBad = &BadRecord{Seq: seq, Reason: reason}
	}
}

// next checks r; false once the chain is broken.
func (c *checker) next(r *Record) bool {
	if c.tr.FirstBad != nil {
		return false
	}
	if s := c.since; s != nil {
		c.since = nil
		if r.Seq == s.Seq {
			// The Since record is still here: it must be the one signed.
			if !bytes.Equal(r.Hash, s.Hash) {
				c.bad(r.Seq, ReasonCheckpoint)
				return false
			}
			return true
		}
		// Dropped by retention (or a filtered export): the next record must link to it.
	}
	switch {
	case r.Seq < c.expect:
		c.bad(r.Seq, ReasonDuplicateSeq)
		return false
	case r.Seq > c.expect:
		c.bad(c.expect, ReasonSequenceGap)
		return false
	}
	if !bytes.Equal(r.PrevHash, c.prev) {
		c.bad(r.Seq, ReasonPrevHash)
		return false
	}
	canon, err := EncodeCanonical(r)
	if errors.Is(err, ErrUnknownEncoding) {
		c.bad(r.Seq, ReasonUnknownEncoding)
		return false
	}
	if err != nil || !bytes.Equal(ChainHash(c.prev, canon), r.Hash) {
		c.bad(r.Seq, ReasonHashMismatch)
		return false
	}
	for c.ai < len(c.anchors) && c.anchors[c.ai].seq == r.Seq {
		if !bytes.Equal(c.anchors[c.ai].hash, r.Hash) {
			c.bad(r.Seq, ReasonCheckpoint)
			return false
		}
		c.tr.Anchored = r.Seq
		c.ai++
	}
	c.prev = append(c.prev[:0:0], r.Hash...)
	c.tr.Checked++
	c.tr.LastSeq = r.Seq
	c.expect++
	return true
}

// finish checks that no anchor lies beyond the last record; false if broken.
func (c *checker) finish() bool {
	if c.tr.FirstBad != nil {
		return false
	}
	if c.ai < len(c.anchors) {
		c.bad(c.tr.LastSeq+1, ReasonTruncated)
		return false
	}
	c.tr.Unanchored = c.tr.LastSeq - c.tr.Anchored
	return true
}

// VerifyNDJSON verifies, offline, chains exported by ExportNDJSON without
// filters (every record of each tenant, in order). A tenant's records must
// start at seq 1, or right after opts.Since. opts.TenantID, if set, skips
// other tenants. No chain-head check is possible offline: give the exported
// checkpoints (opts.Checkpoints) to catch a truncated tail.
func VerifyNDJSON(r io.Reader, opts VerifyOptions) (*Report, error) {
	v := NewVerifier(opts)
	dec := json.NewDecoder(r)
	checkers := map[string]*checker{}
	reports := map[string]*TenantReport{}
	var order []string
	for {
		var jr JSONRecord
		err := dec.Decode(&jr)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audit: verify ndjson: %w", err)
		}
		if opts.TenantID != "" && jr.TenantID != opts.TenantID {
			continue
		}
		c := checkers[jr.TenantID]
		if c == nil {
			tr := &TenantReport{TenantID: jr.TenantID}
			reports[jr.TenantID] = tr
			order = append(order, jr.TenantID)
			c = v.newChecker(jr.TenantID, tr, nil)
			checkers[jr.TenantID] = c
		}
		rec := jr.Record()
		c.next(&rec)
	}
	rep := &Report{OK: true}
	sort.Strings(order)
	for _, t := range order {
		checkers[t].finish()
		tr := reports[t]
		if tr.FirstBad != nil {
			rep.OK = false
		}
		rep.Tenants = append(rep.Tenants, *tr)
	}
	return rep, rep.Err()
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
