package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/access"
)

// A refusal tells the client only what concerns its own request; reasons
// about the record (sensitivity labels, care teams, departments) stay in
// the audit event.
func TestClientDenyMessageHidesRecordReasons(t *testing.T) {
	t.Parallel()
	hidden := []string{access.DenySensitivity, access.DenyNeedsCareTeam, access.DenyUnknownLabel, access.DenyDepartment,
		access.DenyNoPatient, access.DenyLookupFailed, access.DenyNoTenant, access.DenyUnknownAction, access.DenyUnknownRole}
	for _, reason := range hidden {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest("GET", "/api/v1/review-items/x", nil), 403, "forbidden", clientDenyMessage(reason))
		body := rec.Body.String()
		if strings.Contains(body, reason) || strings.Contains(body, "sensitivity") || strings.Contains(body, "label") || strings.Contains(body, "care-team") {
			t.Errorf("reason %q reaches the client: %s", reason, body)
		}
		if !strings.Contains(body, "OperationOutcome") || !strings.Contains(body, "not permitted") {
			t.Errorf("refusal is not a plain OperationOutcome: %s", body)
		}
	}
	for _, reason := range []string{access.DenyPhysicianHold, access.DenyRole} {
		if got := clientDenyMessage(reason); !strings.Contains(got, reason) {
			t.Errorf("actionable reason %q hidden: %q", reason, got)
		}
	}
}

// Every route of the registry is protected or explicitly public, and the
// names the security tests key on are unique.
func TestEndpointsRegistryIsComplete(t *testing.T) {
	t.Parallel()
	s := &Server{}
	seen := map[string]bool{}
	for _, ep := range s.Endpoints() {
		if seen[ep.Name] {
			t.Errorf("endpoint name %s used twice", ep.Name)
		}
		seen[ep.Name] = true
		if !ep.Public && (ep.Scope == "" || ep.Action == "") {
			t.Errorf("endpoint %s has no scope or action", ep.Name)
		}
		if ep.Public && ep.Method != "GET" {
			t.Errorf("public endpoint %s is not a GET", ep.Name)
		}
		if ep.handle == nil {
			t.Errorf("endpoint %s has no handler", ep.Name)
		}
	}
}
