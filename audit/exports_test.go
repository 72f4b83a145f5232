package audit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

var auditor = audit.Requester{Actor: "qa-1", ActorRole: "privacy_officer", ClientID: "vigil-web", SourceIP: "10.9.9.9", Purpose: "HOPERAT"}

func TestExportNDJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1", "t2")
	seedSearch(t, b)
	var buf bytes.Buffer
	var n int
	err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		var err error
		n, err = audit.ExportNDJSON(b.ctx, tx, audit.Query{PatientRef: "Patient/1", By: auditor}, &buf)
		return err
	})
	if err != nil || n != 10 {
		t.Fatalf("export: %d %v", n, err)
	}
	// Every line reproduces its hash from the exported fields alone.
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		var jr audit.JSONRecord
		if err := json.Unmarshal(sc.Bytes(), &jr); err != nil {
			t.Fatal(err)
		}
		r := audit.Record{Seq: jr.Seq, ID: jr.ID, EncVersion: jr.EncVersion, DetailJSON: string(jr.Detail)}
		r.TenantID, r.OccurredAt, r.Actor, r.ActorRole, r.ClientID = jr.TenantID, jr.OccurredAt, jr.Actor, jr.ActorRole, jr.ClientID
		r.OnBehalfOf, r.Action, r.Verb, r.Outcome, r.PatientRef = jr.OnBehalfOf, jr.Action, jr.Verb, jr.Outcome, jr.PatientRef
		r.Resources, r.SourceIP, r.UserAgent, r.Purpose, r.RequestID, r.DecisionID = jr.Resources, jr.SourceIP, jr.UserAgent, jr.Purpose, jr.RequestID, jr.DecisionID
		canon, err := audit.EncodeCanonical(&r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(audit.ChainHash(jr.PrevHash, canon), jr.Hash) {
			t.Fatalf("seq %d: exported record does not reproduce its hash", jr.Seq)
		}
		lines++
	}
	if lines != 10 {
		t.Fatalf("%d lines", lines)
	}
	// The export is itself audited.
	var p audit.Page
	err = b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		p, err = audit.Search(b.ctx, tx, audit.Query{Verb: "audit.export"})
		return err
	})
	if err != nil || len(p.Records) != 1 {
		t.Fatalf("export audit records: %v %v", p.Records, err)
	}
	r := p.Records[0]
	var d map[string]any
	_ = json.Unmarshal([]byte(r.DetailJSON), &d)
	if r.Actor != "qa-1" || r.PatientRef != "Patient/1" || d["count"] != float64(10) || d["format"] != "ndjson" {
		t.Fatalf("export audit record = %+v %v", r, d)
	}
	// No requester, no export.
	err = b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		_, err := audit.ExportNDJSON(b.ctx, tx, audit.Query{}, &buf)
		return err
	})
	if !errors.Is(err, audit.ErrNoRequester) {
		t.Fatalf("err = %v", err)
	}
}

func TestExportFailClosed(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1", "t2")
	seedSearch(t, b)
	if _, err := b.db.Owner.Exec(b.ctx, `REVOKE INSERT ON audit_events FROM vigil_app`); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		_, err := audit.ExportFHIR(b.ctx, tx, audit.Query{By: auditor}, &buf)
		return err
	})
	if err == nil || buf.Len() != 0 {
		t.Fatalf("unaudited export wrote %d bytes, err %v", buf.Len(), err)
	}
}

func TestExportFHIR(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	ev := sampleEvent("t1", 1)
	ev.OnBehalfOf, ev.DecisionID, ev.Outcome = "dr-who", decisionID, audit.OutcomeDenied
	err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		_, err := audit.Append(b.ctx, tx, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"bundle", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
				var err error
				if format == "bundle" {
					_, err = audit.ExportFHIR(b.ctx, tx, audit.Query{Verb: "review.read", By: auditor}, &buf)
				} else {
					_, err = audit.ExportFHIRNDJSON(b.ctx, tx, audit.Query{Verb: "review.read", By: auditor}, &buf)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var ae map[string]any
			if format == "bundle" {
				var bundle struct {
					ResourceType string
					Type         string
					Entry        []struct{ Resource map[string]any }
				}
				if err := json.Unmarshal(buf.Bytes(), &bundle); err != nil {
					t.Fatalf("%v\n%s", err, buf.String())
				}
				if bundle.ResourceType != "Bundle" || bundle.Type != "collection" || len(bundle.Entry) != 1 {
					t.Fatalf("bundle = %+v", bundle)
				}
				ae = bundle.Entry[0].Resource
			} else if err := json.Unmarshal(buf.Bytes(), &ae); err != nil {
				t.Fatal(err)
			}
			checks := []struct{ path, want string }{
				{"resourceType", "AuditEvent"},
				{"type.code", "rest"},
				{"subtype.0.code", "read"},
				{"subtype.1.code", "review.read"},
				{"action", "R"},
				{"outcome", "4"},
				{"meta.profile.0", "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"},
				{"agent.0.who.identifier.value", "user-1"},
				{"agent.0.requestor", "true"},
				{"agent.0.network.address", "10.0.0.7"},
				{"agent.1.type.coding.0.code", "110153"},
				{"agent.1.who.identifier.value", "vigil-web"},
				{"agent.2.who.identifier.value", "dr-who"},
				{"purposeOfEvent.0.coding.0.code", "TREAT"},
				{"entity.0.what.reference", "Patient/1"},
				{"entity.0.role.code", "1"},
				{"entity.1.what.reference", "Observation/1/_history/1"},
				{"entity.2.type.code", "XrequestId"},
				{"entity.3.what.identifier.value", decisionID},
			}
			for _, c := range checks {
				if got := jsonPath(ae, c.path); got != c.want {
					t.Errorf("%s = %q, want %q", c.path, got, c.want)
				}
			}
		})
	}
}

// jsonPath follows a dotted path through decoded JSON (numbers index arrays).
func jsonPath(v any, path string) string {
	for _, p := range splitDots(path) {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return "<missing>"
			}
			v = x[i]
		default:
			return "<missing>"
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "<missing>"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
