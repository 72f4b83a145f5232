package rules

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// selector is a precondition read from a rule's condition: when the
// condition is a conjunction with a top-level term `Ident == "value"` for
// Fact, Analyte, Category or Resource, the rule cannot fire on a fact with
// another value, so Evaluate skips the VM run. It is an optimisation only:
// the full condition still decides.
type selector struct {
	fact, analyte, category, resource string
}

func (s selector) admits(e *Env) bool {
	return (s.fact == "" || s.fact == e.Fact) && (s.analyte == "" || s.analyte == e.Analyte) &&
		(s.category == "" || s.category == e.Category) && (s.resource == "" || s.resource == e.Resource)
}

// selectorOf collects the equality terms of the top-level conjunction of when.
func selectorOf(when string) selector {
	var s selector
	tree, err := parser.Parse(when)
	if err != nil {
		return s
	}
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return
		}
		switch b.Operator {
		case "&&", "and":
			walk(b.Left)
			walk(b.Right)
		case "==":
			id, ok1 := b.Left.(*ast.IdentifierNode)
			str, ok2 := b.Right.(*ast.StringNode)
			if !ok1 || !ok2 {
				return
			}
			switch id.Value {
			case "Fact":
				s.fact = str.Value
			case "Analyte":
				s.analyte = str.Value
			case "Category":
				s.category = str.Value
			case "Resource":
				s.resource = str.Value
			}
		}
	}
	walk(tree.Node)
	return s
}
