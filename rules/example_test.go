package rules_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-health/vigil/rules"
)

func ExamplePack_Evaluate() {
	pack, err := rules.DefaultPack() // compile once at startup and keep it
	if err != nil {
		panic(err)
	}
	trigger := json.RawMessage(`{"resourceType":"Observation","id":"k1","status":"final",
	  "code":{"coding":[{"system":"http://loinc.org","code":"6298-4"}]},
	  "valueQuantity":{"value":6.9,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}}`)
	out, err := pack.Evaluate(rules.Input{Trigger: trigger, Now: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Disposition, out.Priority, out.Queue, out.Flags, out.Escalates())
	fmt.Println(out.Reasons[0])
	// The decision function takes max(floor, draft): a draft can only raise it.
	final := out.Floor().Raise(rules.Floor{Disposition: rules.Suggested, Priority: rules.Routine, Queue: "front-desk"})
	fmt.Println(final.Disposition, final.Priority, final.Queue)
	// Output:
	// ESCALATED stat oncall [physician_hold] true
	// Potassium 6.9 mmol/L is above the critical limit 6.2 mmol/L (reported 6.9 mmol/L)
	// ESCALATED stat oncall
}

func ExampleScanText() {
	for _, rf := range rules.ScanText("No fever. I can't breathe and my chest feels tight") {
		fmt.Println(rf.Category, "|", rf.Phrase)
	}
	// Output:
	// breathing | cant breathe
	// chest_pain | chest feels tight
}
