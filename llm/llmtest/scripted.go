package llmtest

import (
	"encoding/json"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// viewResource is the part of the drafter's user message the scripted
// handlers read (see llm.BuildPrompt).
type viewResource struct {
	Ref   string `json:"ref"`
	Type  string `json:"type"`
	What  string `json:"what"`
	Value string `json:"value"`
	Date  string `json:"date"`
}

type view struct {
	Trigger   string         `json:"trigger"`
	Resources []viewResource `json:"resources"`
}

func triggerOf(req openai.ChatCompletionRequest) (viewResource, bool) {
	for _, m := range req.Messages {
		if m.Role != openai.ChatMessageRoleUser {
			continue
		}
		var v view
		if json.Unmarshal([]byte(m.Content), &v) != nil {
			continue
		}
		for _, r := range v.Resources {
			if r.Ref == v.Trigger {
				return r, true
			}
		}
	}
	return viewResource{}, false
}

func draftJSON(priority, route, rationale, claim, ref, reply string, conf float64) string {
	b, _ := json.Marshal(map[string]any{
		"priority":    priority,
		"route":       route,
		"rationale":   rationale,
		"claims":      []map[string]any{{"text": claim, "evidence": []string{ref}}},
		"confidence":  conf,
		"reply_draft": reply,
	})
	return string(b)
}

// Faithful answers with a draft built only from the trigger as the request
// shows it: one claim quoting its name, value and date, citing its ref.
func Faithful(route string) Handler {
	return func(req openai.ChatCompletionRequest, _ []byte) Response {
		t, ok := triggerOf(req)
		if !ok {
			return Answer(`{"error":"no trigger"}`)
		}
		claim := strings.TrimSpace(strings.Join([]string{t.What, t.Value}, " "))
		if claim == "" {
			claim = "New " + t.Type + " received"
		}
		if t.Date != "" {
			claim += " on " + t.Date
		}
		return Answer(draftJSON("routine", route, "Routine review of the new item.", claim+".", t.Ref, "", 0.9))
	}
}

// Hallucinate answers with a confident draft that misquotes the trigger:
// its value with one digit changed, and an invented medication.
func Hallucinate(route string) Handler {
	return func(req openai.ChatCompletionRequest, _ []byte) Response {
		t, ok := triggerOf(req)
		if !ok {
			return Answer(`{"error":"no trigger"}`)
		}
		val := []byte(t.Value)
		changed := false
		for i, c := range val {
			if c >= '0' && c <= '9' {
				val[i] = '0' + (c-'0'+1)%10
				changed = true
				break
			}
		}
		if !changed {
			val = []byte("7.3 mmol/L")
		}
		claim := strings.TrimSpace(t.What+" "+string(val)) + "; patient is on warfarin 5 mg."
		return Answer(draftJSON("routine", route, "Stable; continue warfarin.", claim, t.Ref, "", 0.97))
	}
}
