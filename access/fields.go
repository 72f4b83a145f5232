package access

// FieldGroup is a group of review-item fields that the API layer removes
// from a response unless VisibleFields allows it (minimum necessary).
type FieldGroup string

// Field groups.
const (
	FieldQueueStatus    FieldGroup = "queue_status"    // queue, priority, status, timestamps
	FieldClinicalValues FieldGroup = "clinical_values" // observation values, units, vitals
	FieldMessageText    FieldGroup = "message_text"    // the patient's message
	FieldAIDraft        FieldGroup = "ai_draft"        // the LLM draft and its grounding
	FieldReplyDraft     FieldGroup = "reply_draft"     // the reply to the patient
	FieldRuleHits       FieldGroup = "rule_hits"       // rule ids, versions, severities (metadata, not the values)
	FieldAuditMetadata  FieldGroup = "audit_metadata"  // who did what when, decision ids, chain position
	FieldPatientRef     FieldGroup = "patient_ref"     // the patient reference / pseudonym
)

// FieldGroups lists every field group.
func FieldGroups() []FieldGroup {
	return []FieldGroup{FieldQueueStatus, FieldClinicalValues, FieldMessageText, FieldAIDraft,
		FieldReplyDraft, FieldRuleHits, FieldAuditMetadata, FieldPatientRef}
}

// VisibleFields returns, for every field group, whether role r may see it.
// grantedClinical is an explicit, audited grant of clinical content (for a
// quality auditor reviewing a case); it widens only the quality auditor's
// view. Unknown roles see nothing. The table is in doc.go.
func VisibleFields(r Role, grantedClinical bool) map[FieldGroup]bool {
	m := make(map[FieldGroup]bool, len(FieldGroups()))
	for _, g := range FieldGroups() {
		m[g] = false
	}
	set := func(gs ...FieldGroup) {
		for _, g := range gs {
			m[g] = true
		}
	}
	switch r {
	case RolePhysician, RoleNurse, RoleTriageNurse:
		set(FieldGroups()...)
	case RoleFrontDesk:
		set(FieldQueueStatus, FieldPatientRef)
	case RoleQualityAuditor:
		set(FieldQueueStatus, FieldRuleHits, FieldAuditMetadata)
		if grantedClinical {
			set(FieldClinicalValues, FieldMessageText, FieldAIDraft, FieldReplyDraft, FieldPatientRef)
		}
	case RolePrivacyOfficer:
		set(FieldQueueStatus, FieldAuditMetadata)
	case RoleAdmin, RoleIntegration:
		// none of the review content
	}
	return m
}
