package api

import (
	"encoding/json"
	"net/http"
	"strings"
)

// problem is the JSON error body of /api endpoints; FHIR endpoints answer
// with an OperationOutcome instead.
type problem struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// operationOutcome renders a FHIR R4 OperationOutcome with one issue.
func operationOutcome(severity, code, diagnostics string) map[string]any {
	return map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []map[string]any{{
			"severity": severity, "code": code, "diagnostics": diagnostics,
		}},
	}
}

// writeError answers with a FHIR OperationOutcome on FHIR routes and scope
// failures, a JSON problem elsewhere. msg must never hold PHI.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if strings.HasPrefix(r.URL.Path, "/fhir/") || code == "forbidden" {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(operationOutcome("error", code, msg))
		return
	}
	writeJSON(w, status, problem{Error: code, Detail: msg})
}
