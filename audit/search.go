package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Requester identifies who runs a search or export (exports are audited as them).
type Requester struct {
	Actor, ActorRole, ClientID, OnBehalfOf  string
	SourceIP, UserAgent, Purpose, RequestID string
	// At is when the request was made (default: time.Now()).
	At time.Time
}

func (r Requester) at() time.Time {
	if r.At.IsZero() {
		return time.Now()
	}
	return r.At
}

// Query selects audit records of one tenant. Empty fields do not filter.
type Query struct {
	// TenantID defaults to the transaction's tenant (vigil.tenant_id).
	TenantID   string
	PatientRef string
	Actor      string
	Action     Action
	Verb       string
	Resource   string // a FHIR reference the record lists in its resources
	Outcome    string
	SourceIP   string
	DecisionID string
	// From and To bound occurred_at: From <= occurred_at < To.
	From, To time.Time
	// Desc returns newest first; the default is oldest first. Either way the
	// order is stable: (occurred_at, seq).
	Desc bool
	// Limit is the page size for Search (default 100, at most 1000).
	Limit int
	// Cursor continues a previous Search (Page.NextCursor); it is opaque.
	Cursor string
	// By is the requester; exports require By.Actor and are audited as By.
	By Requester
}

// Page is one page of search results.
type Page struct {
	Records []Record
	// NextCursor continues the search; "" when there is nothing more.
	NextCursor string
}

// ErrBadCursor is returned (wrapped) for a cursor Search did not issue.
var ErrBadCursor = errors.New("audit: bad cursor")

// ErrInvalidQuery is returned (wrapped) for a malformed filter (action, decision id).
var ErrInvalidQuery = errors.New("audit: invalid query")

const (
	defaultLimit = 100
	maxLimit     = 1000
)

const recordCols = `seq, id::text, occurred_at, actor, actor_role, client_id, on_behalf_of, action, verb,
	outcome, patient_ref, resources, source_ip, user_agent, purpose, request_id, coalesce(decision_id::text, ''),
	detail::text, enc_version, prev_hash, hash`

// Search returns one page of q's results in tx (scoped to the tenant).
// Patient, user and time-range queries use the (tenant, patient_ref |
// actor, occurred_at, seq) indexes.
func Search(ctx context.Context, tx pgx.Tx, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	var recs []Record
	var err error
	if err = resolveTenant(ctx, tx, &q); err != nil {
		return Page{}, err
	}
	err = scan(ctx, tx, q, 0, limit+1, func(r *Record) error {
		c := *r
		c.Resources = append([]string(nil), r.Resources...)
		recs = append(recs, c)
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	p := Page{Records: recs}
	if len(recs) > limit {
		p.Records = recs[:limit]
		last := p.Records[limit-1]
		p.NextCursor = encodeCursor(last.OccurredAt, last.Seq)
	}
	return p, nil
}

func resolveTenant(ctx context.Context, tx pgx.Tx, q *Query) error {
	if q.TenantID != "" {
		return nil
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(current_setting('vigil.tenant_id', true), '')`).Scan(&q.TenantID); err != nil {
		return fmt.Errorf("audit: search: %w", err)
	}
	if q.TenantID == "" {
		return fmt.Errorf("audit: search: no tenant on the transaction")
	}
	return nil
}

// buildWhere renders q's filters (not the cursor) as SQL over audit_events.
func buildWhere(q Query, maxSeq int64) (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	add("tenant_id = ?", q.TenantID)
	if q.PatientRef != "" {
		add("patient_ref = ?", q.PatientRef)
		where = append(where, "patient_ref <> ''") // lets the planner use the partial index
	}
	if q.Actor != "" {
		add("actor = ?", q.Actor)
	}
	if q.Action != "" {
		if !q.Action.Valid() {
			return "", nil, fmt.Errorf("%w: action %q", ErrInvalidQuery, q.Action)
		}
		add("action = ?", string(q.Action))
	}
	if q.Verb != "" {
		add("verb = ?", q.Verb)
	}
	if q.Resource != "" {
		add("resources @> ARRAY[?]::text[]", q.Resource)
	}
	if q.Outcome != "" {
		add("outcome = ?", q.Outcome)
	}
	if q.SourceIP != "" {
		add("source_ip = ?", q.SourceIP)
	}
	if q.DecisionID != "" {
		if !validUUID(q.DecisionID) {
			return "", nil, fmt.Errorf("%w: decision id is not a uuid", ErrInvalidQuery)
		}
		add("decision_id = ?::uuid", q.DecisionID)
	}
	if !q.From.IsZero() {
		add("occurred_at >= ?", q.From)
	}
	if !q.To.IsZero() {
		add("occurred_at < ?", q.To)
	}
	if maxSeq > 0 {
		add("seq <= ?", maxSeq)
	}
	if q.Cursor != "" {
		at, seq, err := decodeCursor(q.Cursor)
		if err != nil {
			return "", nil, err
		}
		op := ">"
		if q.Desc {
			op = "<"
		}
		args = append(args, at, seq)
		where = append(where, fmt.Sprintf("(occurred_at, seq) %s ($%d, $%d)", op, len(args)-1, len(args)))
	}
	return strings.Join(where, " AND "), args, nil
}

// searchSQL renders the query scan runs.
func searchSQL(q Query, maxSeq int64, limit int) (string, []any, error) {
	where, args, err := buildWhere(q, maxSeq)
	if err != nil {
		return "", nil, err
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	sql := `SELECT ` + recordCols + ` FROM audit_events WHERE ` + where + ` ORDER BY occurred_at ` + dir + `, seq ` + dir
	if limit > 0 {
		sql += ` LIMIT ` + strconv.Itoa(limit)
	}
	return sql, args, nil
}

// scan streams q's matches (after its cursor, seq <= maxSeq when > 0, at most
// limit when > 0) in (occurred_at, seq) order.
func scan(ctx context.Context, tx pgx.Tx, q Query, maxSeq int64, limit int, fn func(*Record) error) error {
	sql, args, err := searchSQL(q, maxSeq, limit)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("audit: search: %w", err)
	}
	defer rows.Close()
	var r Record
	r.TenantID = q.TenantID
	for rows.Next() {
		if err := scanRecord(rows, &r); err != nil {
			return fmt.Errorf("audit: search: %w", err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: search: %w", err)
	}
	return nil
}

func scanRecord(rows pgx.Rows, r *Record) error {
	var action string
	var enc int16
	if err := rows.Scan(&r.Seq, &r.ID, &r.OccurredAt, &r.Actor, &r.ActorRole, &r.ClientID, &r.OnBehalfOf, &action, &r.Verb,
		&r.Outcome, &r.PatientRef, &r.Resources, &r.SourceIP, &r.UserAgent, &r.Purpose, &r.RequestID, &r.DecisionID,
		&r.DetailJSON, &enc, &r.PrevHash, &r.Hash); err != nil {
		return err
	}
	r.Action, r.EncVersion = Action(action), int(enc)
	r.OccurredAt = r.OccurredAt.UTC()
	return nil
}

func encodeCursor(at time.Time, seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(at.UnixMicro(), 10) + ":" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (time.Time, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, ErrBadCursor
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != "v1" {
		return time.Time{}, 0, ErrBadCursor
	}
	us, err1 := strconv.ParseInt(parts[1], 10, 64)
	seq, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, ErrBadCursor
	}
	return time.UnixMicro(us).UTC(), seq, nil
}
