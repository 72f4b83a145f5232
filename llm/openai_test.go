package llm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/llm/llmtest"
	"github.com/vigil-health/vigil/rules"

	openai "github.com/sashabaranov/go-openai"
)

func newDrafter(t *testing.T, url string, mod func(*llm.OpenAIConfig)) *llm.OpenAI {
	t.Helper()
	cfg := llm.OpenAIConfig{BaseURL: url, Model: "test-model", AllowInsecureLoopback: true,
		Sleep: func(context.Context, time.Duration) error { return nil }}
	if mod != nil {
		mod(&cfg)
	}
	d, err := llm.NewOpenAI(cfg)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return d
}

const goodDraft = `{"priority":"routine","route":"pharmacy","rationale":"Refill request for a current medication.",
"claims":[{"text":"Patient asks for a refill.","evidence":["R1"]},{"text":"Hydrochlorothiazide 25 MG is prescribed.","evidence":["R2","R1"]}],
"confidence":0.82,"reply_draft":"We have received your refill request."}`

func TestDraftGoodAnswer(t *testing.T) {
	t.Parallel()
	snap := snapshotWith(t, message("Can I get a refill of my blood pressure pills?"))
	srv := llmtest.New(t, llmtest.Fixed(llmtest.Answer(goodDraft)))
	d := newDrafter(t, srv.URL, func(c *llm.OpenAIConfig) { c.Strict = true })
	res, err := d.Draft(context.Background(), llm.Request{Snapshot: snap, Queues: queues, Now: now})
	if err != nil {
		t.Fatalf("Draft: %v", err)
	}
	if res.Draft.Priority != rules.Routine || res.Draft.Route != "pharmacy" || res.Draft.Confidence != 0.82 || res.Draft.Baseline {
		t.Fatalf("draft = %+v", res.Draft)
	}
	wantTrig := snap.Trigger.Ref().String()
	if got := res.Draft.Claims[0].Evidence[0]; got != wantTrig {
		t.Fatalf("evidence R1 mapped to %q, want %q", got, wantTrig)
	}
	second := res.Call.Pseudonyms["R2"]
	if second == "" || res.Draft.Claims[1].Evidence[0] != second {
		t.Fatalf("evidence R2 not mapped back: %v", res.Draft.Claims[1].Evidence)
	}
	if _, ok := snap.Lookup(second); !ok {
		t.Fatalf("mapped reference %q not in snapshot", second)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || !bytes.Equal(reqs[0], res.Call.RequestBody) {
		t.Fatalf("CallRecord.RequestBody differs from the bytes the server received")
	}
	c := res.Call
	if c.Drafter != "openai" || c.PromptID != llm.PromptID || c.PromptVersion != llm.PromptVersion ||
		c.Model != "test-model-served" || c.Attempts != 1 || c.PromptTokens == 0 || c.CompletionTokens == 0 ||
		c.Status != http.StatusOK || len(c.ResponseBody) == 0 || c.Endpoint != srv.URL {
		t.Fatalf("call record = %+v", c)
	}
	if c.Params["model"] != "test-model" {
		t.Fatalf("params model = %v", c.Params["model"])
	}
	rf, _ := c.Params["response_format"].(map[string]any)
	js, _ := rf["json_schema"].(map[string]any)
	if rf["type"] != "json_schema" || js["strict"] != true {
		t.Fatalf("response_format sent = %v", rf)
	}
	if !strings.Contains(string(reqs[0]), `"enum":["triage","pharmacy","front_desk","physician","on_call"]`) {
		t.Fatalf("schema does not restrict route to the queues")
	}
}

func TestDraftNotStrictUsesJSONObject(t *testing.T) {
	t.Parallel()
	snap := snapshotWith(t, message("hello"))
	srv := llmtest.New(t, llmtest.Fixed(llmtest.Answer("Sure! Here is the draft:\n```json\n"+goodDraft+"\n```\nLet me know.")))
	res, err := newDrafter(t, srv.URL, nil).Draft(context.Background(), llm.Request{Snapshot: snap, Queues: queues, Now: now})
	if err != nil {
		t.Fatalf("Draft: %v", err)
	}
	rf, _ := res.Call.Params["response_format"].(map[string]any)
	if rf["type"] != "json_object" {
		t.Fatalf("response_format = %v", rf)
	}
}

func TestRedactionOnTheWire(t *testing.T) {
	t.Parallel()
	text := "Hi, this is Alfreda Wyman (MRN " + patientMRN + ", DOB 10/28/1980, born October 28, 1980). " +
		"Call me at (555) 397-1190 or 555-397-1190 or alfreda.wyman@example.com, SSN " + patientSSN +
		". I live at 924 Osinski Meadow, Wilmington. I need a refill of hydrochlorothiazide."
	snap := snapshotWith(t, message(text), excludedObservation)
	srv := llmtest.New(t, llmtest.Fixed(llmtest.Answer(goodDraft)))
	res, err := newDrafter(t, srv.URL, nil).Draft(context.Background(),
		llm.Request{Snapshot: snap, Queues: queues, Now: now, ExcludedLabels: []string{"42CFRPart2", "PSY"}})
	if err != nil {
		t.Fatalf("Draft: %v", err)
	}
	got := srv.Requests()
	if len(got) != 1 {
		t.Fatalf("server got %d requests", len(got))
	}
	// Decode the JSON strings so escaping cannot hide a leak.
	var body struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	if err := json.Unmarshal(got[0], &body); err != nil {
		t.Fatal(err)
	}
	wire := string(got[0])
	for _, m := range body.Messages {
		wire += "\n" + m.Content
	}
	for _, bad := range []string{patientName, patientFam, patientMRN, patientSSN, patientTel, "397-1190", "397 1190",
		patientDOB, "10/28/1980", "October 28, 1980", "alfreda.wyman@example.com", "Osinski", "Wilmington", patientID,
		"ZZSECRET", "42CFRPart2"} {
		if strings.Contains(strings.ToLower(wire), strings.ToLower(bad)) {
			t.Errorf("the model received %q", bad)
		}
	}
	for _, want := range []string{`"age_years":40`, "refill of hydrochlorothiazide", "[NAME]", "[PHONE]", "[DOB]"} {
		if !strings.Contains(wire, want) {
			t.Errorf("the model did not receive %q", want)
		}
	}
	for p, real := range res.Call.Pseudonyms {
		if strings.Contains(real, "sud-") {
			t.Errorf("excluded resource was given pseudonym %s", p)
		}
	}
}

func TestExcludedTrigger(t *testing.T) {
	t.Parallel()
	snap := snapshotWith(t, excludedObservation)
	srv := llmtest.New(t, llmtest.Fixed(llmtest.Answer(goodDraft)))
	_, err := newDrafter(t, srv.URL, nil).Draft(context.Background(),
		llm.Request{Snapshot: snap, Queues: queues, Now: now, ExcludedLabels: []string{"42cfrpart2"}})
	if !errors.Is(err, llm.ErrExcluded) {
		t.Fatalf("err = %v, want ErrExcluded", err)
	}
	if srv.Calls() != 0 {
		t.Fatalf("the model was called for an excluded trigger")
	}
}

func TestTemperatureAsSent(t *testing.T) {
	t.Parallel()
	f := func(v float32) *float32 { return &v }
	tests := []struct {
		name    string
		temp    *float32
		want    any // Params["temperature"]; nil = absent (server default)
		wantRaw string
	}{
		{"unset sends nothing", nil, nil, ""},
		{"zero is really sent", f(0), 0.0, `"temperature":0`},
		{"non-zero", f(0.5), 0.5, `"temperature":0.5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := snapshotWith(t, message("hello"))
			srv := llmtest.New(t, llmtest.Fixed(llmtest.Answer(goodDraft)))
			res, err := newDrafter(t, srv.URL, func(c *llm.OpenAIConfig) { c.Temperature = tt.temp }).
				Draft(context.Background(), llm.Request{Snapshot: snap, Queues: queues, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			got, present := res.Call.Params["temperature"]
			if tt.want == nil {
				if present || strings.Contains(string(srv.Requests()[0]), `"temperature"`) {
					t.Fatalf("temperature sent: %v", got)
				}
				return
			}
			if got != tt.want || !strings.Contains(string(srv.Requests()[0]), tt.wantRaw) {
				t.Fatalf("temperature recorded %v (present %v), want %v on the wire", got, present, tt.want)
			}
		})
	}
}

// sleeps records the retry delays the drafter asked for.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func TestFaults(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name       string
		handler    llmtest.Handler
		timeout    time.Duration
		wantErr    error
		wantCalls  int
		wantSleeps []time.Duration // nil: don't check
		wantReason string
	}{
		{name: "hang times out", handler: llmtest.Fixed(llmtest.Hang(release)), timeout: 100 * time.Millisecond,
			wantErr: llm.ErrUnavailable, wantCalls: 1},
		{name: "slow times out", handler: llmtest.Fixed(llmtest.Slow(10 * time.Second)), timeout: 100 * time.Millisecond,
			wantErr: llm.ErrUnavailable, wantCalls: 1},
		{name: "429 with Retry-After then OK", handler: llmtest.Sequence(llmtest.Status(429, "2"), llmtest.Answer(goodDraft)),
			wantCalls: 2, wantSleeps: []time.Duration{2 * time.Second}},
		{name: "429 asking too long a wait", handler: llmtest.Fixed(llmtest.Status(429, "120")),
			wantErr: llm.ErrUnavailable, wantCalls: 1, wantSleeps: []time.Duration{}},
		{name: "503 then OK", handler: llmtest.Sequence(llmtest.Status(503, ""), llmtest.Answer(goodDraft)), wantCalls: 2},
		{name: "500 every time", handler: llmtest.Fixed(llmtest.Status(500, "")),
			wantErr: llm.ErrUnavailable, wantCalls: 3},
		{name: "400 is not retried", handler: llmtest.Fixed(llmtest.Status(400, "")),
			wantErr: llm.ErrUnavailable, wantCalls: 1},
		{name: "garbage body", handler: llmtest.Fixed(llmtest.Garbage()),
			wantErr: llm.ErrInvalidOutput, wantCalls: 1},
		{name: "prose only", handler: llmtest.Fixed(llmtest.Answer("The patient seems fine, routine.")),
			wantErr: llm.ErrInvalidOutput, wantCalls: 1, wantReason: "no parseable JSON object"},
		{name: "extra field", handler: llmtest.Fixed(llmtest.Answer(strings.Replace(goodDraft, `"confidence"`, `"diagnosis":"x","confidence"`, 1))),
			wantErr: llm.ErrInvalidOutput, wantCalls: 1, wantReason: `extra field "diagnosis"`},
		{name: "unknown route", handler: llmtest.Fixed(llmtest.Answer(strings.Replace(goodDraft, `"pharmacy"`, `"cardiology"`, 1))),
			wantErr: llm.ErrInvalidOutput, wantCalls: 1, wantReason: "unknown route"},
		{name: "claim without evidence", handler: llmtest.Fixed(llmtest.Answer(strings.Replace(goodDraft, `["R1"]`, `[]`, 1))),
			wantErr: llm.ErrInvalidOutput, wantCalls: 1, wantReason: "claim 1 has no evidence"},
		{name: "truncated output", handler: llmtest.Fixed(llmtest.Response{Content: goodDraft[:40], FinishReason: "length"}),
			wantErr: llm.ErrInvalidOutput, wantCalls: 1, wantReason: "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := snapshotWith(t, message("hello"))
			srv := llmtest.New(t, tt.handler)
			var sl sleeps
			d := newDrafter(t, srv.URL, func(c *llm.OpenAIConfig) {
				c.Sleep = sl.sleep
				c.Timeout = tt.timeout
				c.BaseBackoff = time.Millisecond
				c.MaxBackoff = 5 * time.Second
			})
			res, err := d.Draft(context.Background(), llm.Request{Snapshot: snap, Queues: queues, Now: now})
			if tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if res == nil {
				t.Fatalf("no Result returned for the record")
			}
			if got := srv.Calls(); got != tt.wantCalls || res.Call.Attempts != tt.wantCalls {
				t.Fatalf("server calls %d, attempts %d, want %d", got, res.Call.Attempts, tt.wantCalls)
			}
			if len(res.Call.RequestBody) == 0 {
				t.Fatalf("request body not recorded")
			}
			if tt.wantSleeps != nil && !equalDurations(sl.d, tt.wantSleeps) {
				t.Fatalf("sleeps %v, want %v", sl.d, tt.wantSleeps)
			}
			if tt.wantReason != "" {
				var oe *llm.OutputError
				if !errors.As(err, &oe) || !strings.Contains(oe.Reason, tt.wantReason) {
					t.Fatalf("err = %v, want reason %q", err, tt.wantReason)
				}
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClientSideRefusalIsNotRetried(t *testing.T) {
	t.Parallel()
	snap := snapshotWith(t, message("hello"))
	srv := llmtest.New(t, llmtest.Fixed(llmtest.Answer(goodDraft)))
	d := newDrafter(t, srv.URL, func(c *llm.OpenAIConfig) { c.Model = "o3-mini"; c.MaxTokens = 100 })
	res, err := d.Draft(context.Background(), llm.Request{Snapshot: snap, Queues: queues, Now: now})
	if !errors.Is(err, llm.ErrUnavailable) || srv.Calls() != 0 || res.Call.Attempts != 1 || d.BreakerState() != llm.StateClosed {
		t.Fatalf("err %v, calls %d, attempts %d, breaker %s", err, srv.Calls(), res.Call.Attempts, d.BreakerState())
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	snap := snapshotWith(t, message("hello"))
	var mu sync.Mutex
	fail := true
	srv := llmtest.New(t, func(req openai.ChatCompletionRequest, raw []byte) llmtest.Response {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return llmtest.Status(502, "")
		}
		return llmtest.Answer(goodDraft)
	})
	clock := now
	var cmu sync.Mutex
	d := newDrafter(t, srv.URL, func(c *llm.OpenAIConfig) {
		c.MaxAttempts = 1
		c.BreakerThreshold = 2
		c.BreakerCooldown = time.Minute
		c.Now = func() time.Time { cmu.Lock(); defer cmu.Unlock(); return clock }
	})
	req := llm.Request{Snapshot: snap, Queues: queues, Now: now}
	for i := 0; i < 2; i++ {
		if _, err := d.Draft(context.Background(), req); !errors.Is(err, llm.ErrUnavailable) {
			t.Fatalf("call %d: err = %v", i, err)
		}
	}
	if d.BreakerState() != llm.StateOpen {
		t.Fatalf("breaker %s after threshold failures", d.BreakerState())
	}
	res, err := d.Draft(context.Background(), req)
	if !errors.Is(err, llm.ErrUnavailable) || srv.Calls() != 2 || res.Call.Attempts != 0 {
		t.Fatalf("open breaker did not fail fast: err %v, calls %d", err, srv.Calls())
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	cmu.Lock()
	clock = clock.Add(2 * time.Minute)
	cmu.Unlock()
	if _, err := d.Draft(context.Background(), req); err != nil {
		t.Fatalf("probe after cooldown: %v", err)
	}
	if d.BreakerState() != llm.StateClosed || srv.Calls() != 3 {
		t.Fatalf("breaker %s, calls %d after a successful probe", d.BreakerState(), srv.Calls())
	}
}

func TestNewOpenAIValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  llm.OpenAIConfig
		want string // substring naming the setting; "" = valid
	}{
		{"https ok", llm.OpenAIConfig{BaseURL: "https://llm.example.org/v1", Model: "m"}, ""},
		{"loopback http ok", llm.OpenAIConfig{BaseURL: "http://127.0.0.1:8080/v1", Model: "m", AllowInsecureLoopback: true}, ""},
		{"loopback http without flag", llm.OpenAIConfig{BaseURL: "http://127.0.0.1:8080/v1", Model: "m"}, "BaseURL"},
		{"remote http", llm.OpenAIConfig{BaseURL: "http://llm.example.org/v1", Model: "m", AllowInsecureLoopback: true}, "BaseURL"},
		{"no model", llm.OpenAIConfig{BaseURL: "https://llm.example.org/v1"}, "Model"},
		{"relative url", llm.OpenAIConfig{BaseURL: "/v1", Model: "m"}, "BaseURL"},
		{"temperature", llm.OpenAIConfig{BaseURL: "https://x.org", Model: "m", Temperature: new(float32(3))}, "Temperature"},
		{"attempts", llm.OpenAIConfig{BaseURL: "https://x.org", Model: "m", MaxAttempts: -1}, "MaxAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := llm.NewOpenAI(tt.cfg)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestCheckAllowed(t *testing.T) {
	t.Parallel()
	allow := []llm.Endpoint{
		{BaseURL: "https://baa.example.org/v1/", BAA: true},
		{BaseURL: "https://nobaa.example.org/v1", BAA: false},
	}
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://baa.example.org/v1", true},
		{"https://BAA.example.org:443/v1/", true},
		{"https://nobaa.example.org/v1", false},
		{"https://other.example.org/v1", false},
		{"http://baa.example.org/v1", false},
		{"https://baa.example.org/v2", false},
		{"not a url", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := llm.CheckAllowed(tt.url, allow)
			if tt.ok != (err == nil) || (!tt.ok && !errors.Is(err, llm.ErrEndpointNotAllowed)) {
				t.Fatalf("CheckAllowed = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
