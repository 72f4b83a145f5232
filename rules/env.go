package rules

// Fact kinds: the value of Env.Fact.
const (
	FactValue    = "value"    // one measured value (an Observation or one of its components)
	FactRedFlag  = "red_flag" // one red-flag match in patient text
	FactResource = "resource" // the trigger as a whole (status, payload readability)
)

// Env is the typed environment every rule condition is compiled against and
// evaluated with. Evaluate builds one Env per fact of the trigger (each
// value, each red-flag match, and the resource itself) and runs every rule on
// each; a rule fires on a fact when its condition is true. Identifiers not
// listed here are rejected at Compile. All values are already normalised:
// numbers in the analyte's canonical unit, codes upper-cased.
type Env struct {
	// Fact is FactValue, FactRedFlag or FactResource.
	Fact string
	// Resource is the trigger's resourceType; Status its status code.
	Resource string
	Status   string
	// AgeYears is the patient's age when known (HasAge).
	AgeYears float64
	HasAge   bool
	// PreviouslyCommunicated is Input.PreviouslyCommunicated.
	PreviouslyCommunicated bool

	// Value facts.

	// Analyte is the pack analyte the coding resolved to ("" if none).
	Analyte string
	// System and Code are the coding that decided the analyte (or the first coding).
	System, Code string
	// HasValue: a number was reported (valueQuantity, valueInteger or a
	// numeric valueString). Value is it, in Unit (canonical when UnitKnown).
	HasValue   bool
	Value      float64
	Unit       string
	Comparator string
	// UnitKnown: the value's unit was understood for the analyte (always
	// false when Analyte is "").
	UnitKnown bool
	// UnitMissing: no unit was sent.
	UnitMissing bool
	// ValueUnreadable: a valueString that is not a number (with an optional comparator).
	ValueUnreadable bool
	// DataAbsent: dataAbsentReason was sent instead of a value.
	DataAbsent bool
	// Coded: the value is a valueCodeableConcept.
	Coded bool
	// Interpretation is the most severe lab interpretation code sent
	// (HH, LL, AA, H, L, A, ...), "" if none.
	Interpretation string
	// Critical limits after tenant and age overrides (canonical unit).
	CriticalLow, CriticalHigh       float64
	HasCriticalLow, HasCriticalHigh bool
	// BelowCriticalLow / AboveCriticalHigh: every value the comparator
	// allows is beyond the limit. CriticalIndeterminate: only some are.
	BelowCriticalLow, AboveCriticalHigh bool
	CriticalIndeterminate               bool
	// Reference range from the Observation (in Unit when comparable).
	RefLow, RefHigh       float64
	HasRefLow, HasRefHigh bool
	// OutsideRef: the value is (or, with a comparator, may be) outside the
	// Observation's own reference range.
	OutsideRef bool

	// Red-flag facts.

	Category string // lexicon category id, e.g. "chest_pain"
	Phrase   string // the words that matched

	// Resource facts.

	// Amended: status amended or corrected.
	Amended bool
	// Unreadable: part of the text could not be read (attachment, reference,
	// or a script the lexicon does not cover); UnreadableReason says why.
	Unreadable       bool
	UnreadableReason string
}

// messageData is what a rule's message template sees.
type messageData struct {
	Analyte, Display, System, Code string
	Value, Unit, Comparator        string
	OriginalValue, OriginalUnit    string
	Limit, Interpretation          string
	// RefRange is the Observation's own reference range as sent ("3.5–5.1 mmol/L").
	RefRange                 string
	Category, Phrase, Reason string
}

func sampleMessageData() messageData {
	return messageData{Analyte: "potassium", Display: "Potassium", System: LOINC, Code: "6298-4", Value: "6.9",
		Unit: "mmol/L", OriginalValue: "6.9", OriginalUnit: "mmol/L", Limit: "6.2", RefRange: "3.5–5.1 mmol/L", Interpretation: "HH",
		Category: "chest_pain", Phrase: "chest pain", Reason: "reason"}
}
