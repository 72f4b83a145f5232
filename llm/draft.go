package llm

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/rules"
)

// Claim is one statement of fact in a draft and the resources it rests on.
// Evidence holds references: pseudonyms ("R3") on the wire, pinned
// "Type/id/_history/v" references in a Result.
type Claim struct {
	Text     string   `json:"text"`
	Evidence []string `json:"evidence"`
}

// Draft is a suggested triage outcome. It is never acted on without
// grounding (package triage/ground) and a clinician's review.
type Draft struct {
	// Priority is the suggested urgency (never PriorityNone in a valid draft).
	Priority rules.Priority `json:"priority"`
	// Route is one of the tenant's configured queues.
	Route string `json:"route"`
	// Rationale explains the priority and route for the reviewer.
	Rationale string `json:"rationale"`
	// Claims are the facts the draft relies on, each with evidence.
	Claims []Claim `json:"claims"`
	// Confidence is the drafter's self-reported confidence in [0, 1].
	Confidence float64 `json:"confidence"`
	// ReplyDraft is an optional message to the patient; it is released only
	// after a clinician approves it.
	ReplyDraft string `json:"reply_draft,omitempty"`
	// Baseline is true when the deterministic Baseline drafter produced the
	// draft (it is not part of the model's output).
	Baseline bool `json:"baseline,omitempty"`
}

// Request is what a Drafter drafts from.
type Request struct {
	// Snapshot is the pinned trigger, patient and context (required).
	Snapshot *fhir.Snapshot
	// Queues are the routes the tenant allows; a draft must pick one.
	Queues []string
	// ExcludedLabels are meta.security codes (e.g. "42CFRPart2", "ETH",
	// "PSY") whose resources must never be sent to a model. Compared
	// case-insensitively.
	ExcludedLabels []string
	// PatientAgeYears, when set, is sent instead of computing the age from
	// the Patient's birthDate and Now.
	PatientAgeYears *float64
	// Now is the reference time for the patient's age.
	Now time.Time
}

// CallRecord is what was sent to and received from a model, for the
// decision record. RequestBody, ResponseBody and Pseudonyms are PHI: seal
// them, never log them.
type CallRecord struct {
	// Drafter is the drafter's Name().
	Drafter string `json:"drafter"`
	// Model is the model id the server reported (else the one requested).
	Model string `json:"model,omitempty"`
	// Endpoint is the base URL called.
	Endpoint string `json:"endpoint,omitempty"`
	// PromptID and PromptVersion identify the prompt template.
	PromptID      string `json:"prompt_id,omitempty"`
	PromptVersion string `json:"prompt_version,omitempty"`
	// RequestBody is the exact bytes of the last HTTP request body sent.
	RequestBody []byte `json:"request_body,omitempty"`
	// ResponseBody is the exact bytes of the last HTTP response body received.
	ResponseBody []byte `json:"response_body,omitempty"`
	// Params are the top-level request members other than "messages", as
	// decoded from RequestBody, i.e. as actually sent. A parameter absent here
	// was not sent and the server's default applied.
	Params map[string]any `json:"params,omitempty"`
	// PromptTokens and CompletionTokens are the server's usage counts.
	PromptTokens     int `json:"prompt_tokens,omitempty"`
	CompletionTokens int `json:"completion_tokens,omitempty"`
	// Attempts is the number of HTTP requests made (0 when none was).
	Attempts int `json:"attempts"`
	// Latency is the wall time of the whole Draft call, retries included.
	Latency time.Duration `json:"latency"`
	// Pseudonyms maps each pseudonym sent to the pinned reference it stands for.
	Pseudonyms map[string]string `json:"pseudonyms,omitempty"`
	// Status is the HTTP status of the last response (0 when none arrived).
	Status int `json:"status,omitempty"`
}

// Result is a draft with the record of how it was made.
type Result struct {
	// Draft has its evidence mapped back to pinned references.
	Draft Draft
	// Call records the exchange with the model.
	Call CallRecord
}

// Drafter drafts a triage suggestion from a snapshot.
//
// On error, Draft still returns a non-nil *Result whenever something was sent
// or received, so that the exchange can be recorded. Errors wrap
// ErrInvalidOutput (the model answered with something unusable) or
// ErrUnavailable (no usable answer in time); the pipeline falls back to the
// baseline draft and MANUAL_TRIAGE in both cases.
type Drafter interface {
	// Name is a stable identifier recorded in CallRecord.Drafter.
	Name() string
	// Draft drafts a suggestion for req. It must honour ctx's deadline.
	Draft(ctx context.Context, req Request) (*Result, error)
}

// Sentinel errors. Match them with errors.Is.
var (
	// ErrInvalidOutput: the model's answer is not a valid draft (see *OutputError).
	ErrInvalidOutput = errors.New("llm: invalid model output")
	// ErrUnavailable: the model could not be reached, timed out, kept failing,
	// or the circuit breaker is open.
	ErrUnavailable = errors.New("llm: model unavailable")
	// ErrEndpointNotAllowed: the endpoint is not on the tenant's allowlist
	// with a BAA.
	ErrEndpointNotAllowed = errors.New("llm: endpoint not allowed")
	// ErrExcluded: the trigger itself carries an excluded sensitivity label,
	// so nothing can be drafted by a model; triage it manually.
	ErrExcluded = errors.New("llm: trigger carries an excluded sensitivity label")
	// ErrBadRequest: the Request is unusable (no snapshot, no trigger, no queues).
	ErrBadRequest = errors.New("llm: bad request")
)

// OutputError says why a model's output was rejected. Reason is a stable,
// PHI-free description (it never quotes the output).
type OutputError struct {
	Reason string
}

func (e *OutputError) Error() string { return "llm: invalid model output: " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidOutput) true.
func (e *OutputError) Unwrap() error { return ErrInvalidOutput }

func outputErr(reason string) error { return &OutputError{Reason: reason} }
