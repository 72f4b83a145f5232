package llm_test

import (
	"errors"
	"fmt"

	"github.com/vigil-health/vigil/llm"
)

func ExampleParseDraft() {
	out := "```json\n" + `{"priority":"urgent","route":"triage","rationale":"New symptom reported.",
"claims":[{"text":"Patient reports dizziness for 3 days.","evidence":["R1"]}],"confidence":0.7,"reply_draft":""}` + "\n```"
	d, err := llm.ParseDraft([]byte(out), []string{"triage", "pharmacy"})
	fmt.Println(d.Priority, d.Route, d.Claims[0].Evidence, err)

	_, err = llm.ParseDraft([]byte(`{"priority":"urgent","route":"cardiology"}`), []string{"triage"})
	var oe *llm.OutputError
	fmt.Println(errors.As(err, &oe), oe.Reason)
	// Output:
	// urgent triage [R1] <nil>
	// true missing rationale
}

func ExampleCheckAllowed() {
	allow := []llm.Endpoint{{BaseURL: "https://llm.example-health.org/v1", BAA: true}}
	fmt.Println(llm.CheckAllowed("https://llm.example-health.org/v1/", allow))
	fmt.Println(errors.Is(llm.CheckAllowed("https://api.example.com/v1", allow), llm.ErrEndpointNotAllowed))
	// Output:
	// <nil>
	// true
}
