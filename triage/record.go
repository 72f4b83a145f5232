package triage

import (
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/triage/ground"
)

// RecordVersion is the format version of Record; bump it when fields change meaning.
const RecordVersion = 1

// Record is one revision's decision record: enough to explain and replay the
// decision. It holds references, hashes, rule hits (values and units) and
// draft metadata; free text (message copies, snapshot bytes, prompts, LLM
// output, the draft's prose and reply) lives in the sealed part (Sealed).
type Record struct {
	Version    int            `json:"version"`
	DecisionID string         `json:"decision_id"`
	TenantID   string         `json:"tenant_id"`
	Revision   int            `json:"revision"`
	Stage      string         `json:"stage"`
	Trigger    Trigger        `json:"trigger"`
	Snapshot   *SnapInfo      `json:"snapshot,omitempty"`
	RulePack   PackInfo       `json:"rule_pack"`
	RuleHits   []rules.Hit    `json:"rule_hits"`
	Draft      *DraftInfo     `json:"draft,omitempty"`
	Shadow     *DraftInfo     `json:"shadow_draft,omitempty"`
	Grounding  *ground.Result `json:"grounding,omitempty"`
	Confidence *Confidence    `json:"confidence,omitempty"`
	Outcome    Outcome        `json:"outcome"`
	Times      Times          `json:"times"`
	Review     *Review        `json:"review,omitempty"`
}

// Trigger identifies what caused the decision.
type Trigger struct {
	Ref           string `json:"ref"` // Type/id/_history/version
	Type          string `json:"type"`
	Key           string `json:"key"` // versionId, or sha256 of the resource without meta
	IntakeEventID string `json:"intake_event_id"`
	EventID       string `json:"event_id"`
	Source        string `json:"source"`
	PatientRef    string `json:"patient_ref,omitempty"`
	SHA256        string `json:"sha256,omitempty"`
}

// SnapInfo pins every resource the decision used.
type SnapInfo struct {
	Hash    string       `json:"hash"`
	Entries []fhir.Entry `json:"entries"`
}

// PackInfo names the rule pack that produced the hits.
type PackInfo struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// DraftInfo describes the draft without its prose.
type DraftInfo struct {
	Drafter       string         `json:"drafter"`
	Baseline      bool           `json:"baseline"`
	Shadow        bool           `json:"shadow,omitempty"`
	Status        string         `json:"status"` // ok | unavailable | invalid
	StatusReason  string         `json:"status_reason,omitempty"`
	Model         string         `json:"model,omitempty"`
	Endpoint      string         `json:"endpoint,omitempty"`
	PromptID      string         `json:"prompt_id,omitempty"`
	PromptVersion string         `json:"prompt_version,omitempty"`
	Params        map[string]any `json:"params,omitempty"`
	Priority      string         `json:"priority,omitempty"`
	Route         string         `json:"route,omitempty"`
	Claims        int            `json:"claims"`
	HasReply      bool           `json:"has_reply"`
	PromptTokens  int            `json:"prompt_tokens,omitempty"`
	OutputTokens  int            `json:"completion_tokens,omitempty"`
	Attempts      int            `json:"attempts,omitempty"`
	LatencyMS     int64          `json:"latency_ms,omitempty"`
	ResponseSHA   string         `json:"response_sha256,omitempty"`
}

// Confidence records raw and effective confidence and the threshold applied.
type Confidence struct {
	Raw       float64 `json:"raw"`
	Effective float64 `json:"effective"`
	Threshold float64 `json:"threshold"`
	Route     string  `json:"route"`
}

// Times are the decision's milestones.
type Times struct {
	Received  time.Time  `json:"received"`
	Escalated *time.Time `json:"escalated,omitempty"`
	Drafted   *time.Time `json:"drafted,omitempty"`
	Decided   *time.Time `json:"decided,omitempty"`
	Reviewed  *time.Time `json:"reviewed,omitempty"`
}

// Review is a clinician's action on the item.
type Review struct {
	Reviewer     string `json:"reviewer"`
	Role         string `json:"role"`
	Action       string `json:"action"`
	ReasonCode   string `json:"reason_code,omitempty"`
	ReplyRelease bool   `json:"reply_released,omitempty"`
}

// Sealed is the encrypted part of a revision.
type Sealed struct {
	Snapshot       []byte      `json:"snapshot,omitempty"` // fhir.Snapshot JSON (original bytes)
	TriggerRaw     []byte      `json:"trigger_raw,omitempty"`
	LLMRequest     []byte      `json:"llm_request,omitempty"`
	LLMResponse    []byte      `json:"llm_response,omitempty"`
	DraftRationale string      `json:"draft_rationale,omitempty"`
	DraftClaims    []ClaimText `json:"draft_claims,omitempty"`
	ReplyDraft     string      `json:"reply_draft,omitempty"`
	ShadowLLMDraft []byte      `json:"shadow_llm_draft,omitempty"`
}

// ClaimText is one claim of a draft with its evidence.
type ClaimText struct {
	Text     string   `json:"text"`
	Evidence []string `json:"evidence"`
}
