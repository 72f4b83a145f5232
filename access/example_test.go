package access_test

import (
	"context"
	"fmt"

	"github.com/vigil-health/vigil/access"
)

func ExampleHasScope() {
	granted := []string{"openid", "user/Task.r", "user/Task.s", "system/Observation.rs"}
	fmt.Println(access.HasScope(granted, "user/Task.rs"))
	fmt.Println(access.HasScope(granted, "user/Task.u"))
	fmt.Println(access.HasScope(granted, "user/Observation.rs")) // system/ does not satisfy user/
	// Output:
	// true
	// false
	// false
}

func ExamplePolicy_Decide() {
	pol := &access.Policy{} // no care-team or grant lookups: role and department only
	nurse := &access.Principal{Subject: "rn-7", Role: access.RoleNurse, Department: "cardiology", TenantID: "clinic-a"}
	held := access.Attributes{PatientRef: "pt-1", Department: "cardiology", PhysicianHold: true}

	d := pol.Decide(context.Background(), nurse, access.ActionItemRead, held)
	fmt.Println(d.Allow, d.Via)
	d = pol.Decide(context.Background(), nurse, access.ActionReplyRelease, held)
	fmt.Println(d.Allow, d.Reason)
	// Output:
	// true role
	// false physician hold: release requires a physician
}

func ExampleVisibleFields() {
	v := access.VisibleFields(access.RoleFrontDesk, false)
	fmt.Println(v[access.FieldQueueStatus], v[access.FieldPatientRef], v[access.FieldMessageText])
	// Output: true true false
}
