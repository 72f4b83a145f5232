package ground_test

import (
	"fmt"

	"github.com/vigil-health/vigil/triage/ground"
)

func ExampleEffectiveConfidence() {
	grounded := ground.Result{Grounded: true}
	fmt.Println(ground.EffectiveConfidence(0.8, grounded, true))
	fmt.Println(ground.EffectiveConfidence(0.8, grounded, false))
	fmt.Println(ground.EffectiveConfidence(0.99, ground.Result{Grounded: false}, true))
	// Output:
	// 0.8
	// 0.6000000000000001
	// 0
}
