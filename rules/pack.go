package rules

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"sigs.k8s.io/yaml"
)

//go:embed packs/default
var defaultPackFiles embed.FS

// DefaultPackFS returns the embedded default pack (rules/packs/default) as an
// fs.FS rooted at the pack directory.
func DefaultPackFS() fs.FS {
	sub, err := fs.Sub(defaultPackFiles, "packs/default")
	if err != nil { // cannot happen: the path is a constant embedded directory
		panic("rules: embedded default pack missing: " + err.Error())
	}
	return sub
}

// DefaultPack compiles the embedded default pack. It does not cache: callers
// compile once at startup and keep the *Pack.
func DefaultPack() (*Pack, error) { return Compile(DefaultPackFS()) }

// Kind classifies a rule.
type Kind string

// Rule kinds.
const (
	KindCritical Kind = "critical" // critical lab value: ESCALATED
	KindAbnormal Kind = "abnormal" // abnormal result: HELD for a physician
	KindRedFlag  Kind = "red_flag" // red-flag symptom in patient text: ESCALATED
	KindRouting  Kind = "routing"  // sets a queue or a low disposition
	KindGuard    Kind = "guard"    // data the engine cannot judge: MANUAL_TRIAGE
)

func (k Kind) valid() bool {
	switch k {
	case KindCritical, KindAbnormal, KindRedFlag, KindRouting, KindGuard:
		return true
	}
	return false
}

// Rule is one compiled rule as written in a pack (the expression and template
// are kept as source text; their compiled forms live inside the Pack).
type Rule struct {
	ID          string
	Version     string
	Description string
	Kind        Kind
	Disposition Disposition
	Priority    Priority
	Flags       Flags
	Queue       string
	When        string // expr condition over Env
	Message     string // text/template over the fields of Value
	File        string // pack file the rule came from
	Line        int    // 1-based line of the rule's id in File
}

type compiledRule struct {
	Rule
	prog *vm.Program
	tmpl *template.Template
	sel  selector
}

// Pack is a compiled rule pack: immutable and safe for concurrent use.
type Pack struct {
	name, version, sha string
	rules              []compiledRule
	analytes           *analyteTable
	lex                *lexicon
	memoryBudget       uint
	vms                *sync.Pool
}

// Name is the pack name from pack.yaml.
func (p *Pack) Name() string { return p.name }

// Version is the pack version from pack.yaml.
func (p *Pack) Version() string { return p.version }

// SHA256 is the hex SHA-256 of the pack's files in canonical order (see the
// package documentation).
func (p *Pack) SHA256() string { return p.sha }

// Rules returns a copy of the pack's rules in evaluation order (files in
// path order, rules in file order).
func (p *Pack) Rules() []Rule {
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.Rule
		out[i].Flags = slices.Clone(r.Flags)
	}
	return out
}

// Option configures Compile.
type Option func(*compileConfig)

type compileConfig struct {
	maxNodes     uint
	memoryBudget uint
}

// Defaults for Compile options.
const (
	DefaultMaxNodes     uint = 500     // AST nodes per rule condition
	DefaultMemoryBudget uint = 100_000 // expr VM memory units per rule run
)

// WithMaxNodes bounds the size of each rule condition (default DefaultMaxNodes).
func WithMaxNodes(n uint) Option { return func(c *compileConfig) { c.maxNodes = n } }

// WithMemoryBudget bounds the expr VM memory of each rule run (default
// DefaultMemoryBudget).
func WithMemoryBudget(n uint) Option { return func(c *compileConfig) { c.memoryBudget = n } }

// CompileError is one problem in a pack. Line and Column are 1-based; zero
// means unknown. It never carries patient data.
type CompileError struct {
	File, RuleID string
	Line, Column int
	Err          error
}

// Error names the file, position, rule and problem (never patient data).
func (e *CompileError) Error() string {
	var b strings.Builder
	b.WriteString("rules: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if e.RuleID != "" {
		fmt.Fprintf(&b, ": rule %q", e.RuleID)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error (an expr, YAML or template error).
func (e *CompileError) Unwrap() error { return e.Err }

// CompileErrors is every problem found in a pack, in file and line order.
type CompileErrors []*CompileError

// Error lists every problem, one per line.
func (es CompileErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return fmt.Sprintf("rules: pack refused, %d error(s):\n%s", len(es), strings.Join(parts, "\n"))
}

// Unwrap returns the individual errors (for errors.Is / errors.As).
func (es CompileErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Lint compiles the pack and reports every problem (nil if it is good).
func Lint(fsys fs.FS) error {
	_, err := Compile(fsys)
	return err
}

type manifest struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

type ruleFile struct {
	Rules []ruleYAML `json:"rules"`
}

type ruleYAML struct {
	ID          string   `json:"id"`
	Version     string   `json:"version"`
	Description string   `json:"description"`
	Kind        string   `json:"kind"`
	Disposition string   `json:"disposition"`
	Priority    string   `json:"priority"`
	Flags       []string `json:"flags"`
	Queue       string   `json:"queue"`
	When        string   `json:"when"`
	Message     string   `json:"message"`
}

const (
	manifestFile = "pack.yaml"
	analytesFile = "analytes.yaml"
	lexiconFile  = "lexicon.yaml"
	ruleSuffix   = ".rules.yaml"
)

type compiler struct {
	cfg   compileConfig
	errs  CompileErrors
	files map[string][]byte
}

func (c *compiler) fail(file, id string, line, col int, err error) {
	c.errs = append(c.errs, &CompileError{File: file, RuleID: id, Line: line, Column: col, Err: err})
}

// Compile reads and compiles a pack: pack.yaml, analytes.yaml, lexicon.yaml
// and every *.rules.yaml at the root of fsys. It is all-or-nothing: on any
// problem it returns nil and CompileErrors naming every bad file or rule. It
// is deterministic: the same bytes give the same Pack and SHA256.
func Compile(fsys fs.FS, opts ...Option) (*Pack, error) {
	c := &compiler{cfg: compileConfig{maxNodes: DefaultMaxNodes, memoryBudget: DefaultMemoryBudget}, files: map[string][]byte{}}
	for _, o := range opts {
		o(&c.cfg)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("rules: read pack: %w", err)
	}
	var ruleFiles []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		n := e.Name()
		if n == manifestFile || n == analytesFile || n == lexiconFile || strings.HasSuffix(n, ruleSuffix) {
			b, err := fs.ReadFile(fsys, n)
			if err != nil {
				return nil, fmt.Errorf("rules: read pack file %s: %w", n, err)
			}
			c.files[n] = b
			if strings.HasSuffix(n, ruleSuffix) {
				ruleFiles = append(ruleFiles, n)
			}
		}
	}
	slices.Sort(ruleFiles)
	p := &Pack{memoryBudget: c.cfg.memoryBudget}

	// Manifest.
	if b, ok := c.files[manifestFile]; !ok {
		c.fail(manifestFile, "", 0, 0, errors.New("missing manifest"))
	} else {
		var m manifest
		if err := yaml.UnmarshalStrict(b, &m); err != nil {
			c.fail(manifestFile, "", yamlErrLine(err), 0, fmt.Errorf("parse: %w", err))
		} else {
			if strings.TrimSpace(m.Name) == "" {
				c.fail(manifestFile, "", 0, 0, errors.New("name is required"))
			}
			if strings.TrimSpace(m.Version) == "" {
				c.fail(manifestFile, "", 0, 0, errors.New("version is required"))
			}
			p.name, p.version = m.Name, m.Version
		}
	}
	// Tables.
	if b, ok := c.files[analytesFile]; !ok {
		c.fail(analytesFile, "", 0, 0, errors.New("missing analyte table"))
	} else {
		p.analytes = c.compileAnalytes(b)
	}
	if b, ok := c.files[lexiconFile]; !ok {
		c.fail(lexiconFile, "", 0, 0, errors.New("missing red-flag lexicon"))
	} else {
		p.lex = c.compileLexicon(lexiconFile, b)
	}
	if len(ruleFiles) == 0 {
		c.fail(manifestFile, "", 0, 0, errors.New("pack has no *.rules.yaml file"))
	}
	// Rules.
	seen := map[string]string{}
	for _, fn := range ruleFiles {
		p.rules = append(p.rules, c.compileRuleFile(fn, c.files[fn], seen)...)
	}
	if len(c.errs) > 0 {
		slices.SortStableFunc(c.errs, func(a, b *CompileError) int {
			if x := strings.Compare(a.File, b.File); x != 0 {
				return x
			}
			return a.Line - b.Line
		})
		return nil, c.errs
	}
	p.sha = packHash(c.files)
	budget := c.cfg.memoryBudget
	p.vms = &sync.Pool{New: func() any { return &vm.VM{MemoryBudget: budget} }}
	return p, nil
}

// packHash hashes files in canonical order: sorted by path; for each,
// path NUL len NUL bytes.
func packHash(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(len(files[n]))))
		h.Write([]byte{0})
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// yamlErrLine extracts "line N" from a YAML parser error, or 0.
func yamlErrLine(err error) int {
	msg := err.Error()
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	j := i + len("line ")
	k := j
	for k < len(msg) && msg[k] >= '0' && msg[k] <= '9' {
		k++
	}
	n, _ := strconv.Atoi(msg[j:k])
	return n
}

// validRuleID reports whether id is lower-case letters, digits, '.', '_' or '-'.
func validRuleID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (c *compiler) compileRuleFile(fn string, src []byte, seen map[string]string) []compiledRule {
	var rf ruleFile
	if err := yaml.UnmarshalStrict(src, &rf); err != nil {
		c.fail(fn, "", yamlErrLine(err), 0, fmt.Errorf("parse: %w", err))
		return nil
	}
	lines := strings.Split(string(src), "\n")
	var out []compiledRule
	from := 0
	for i, ry := range rf.Rules {
		line := findKeyLine(lines, from, "id", ry.ID)
		if line > 0 {
			from = line
		}
		id := ry.ID
		bad := false
		fail := func(l, col int, err error) {
			bad = true
			c.fail(fn, id, l, col, err)
		}
		if id == "" {
			fail(line, 0, fmt.Errorf("rule #%d has no id", i+1))
		} else if !validRuleID(id) {
			fail(line, 0, errors.New("id must be lower-case letters, digits, '.', '_' or '-'"))
		} else if prev, dup := seen[id]; dup {
			fail(line, 0, fmt.Errorf("duplicate rule id (first in %s)", prev))
		} else {
			seen[id] = fn
		}
		r := Rule{ID: id, Version: ry.Version, Description: ry.Description, Kind: Kind(ry.Kind),
			Queue: ry.Queue, When: ry.When, Message: ry.Message, File: fn, Line: line}
		if r.Version == "" {
			fail(line, 0, errors.New("version is required"))
		}
		if !r.Kind.valid() {
			fail(line, 0, fmt.Errorf("unknown kind %q (want critical, abnormal, red_flag, routing or guard)", ry.Kind))
		}
		dd, dp, dq, df := kindDefaults(r.Kind)
		r.Disposition, r.Priority, r.Queue, r.Flags = dd, dp, dq, df
		if ry.Disposition != "" {
			d, err := ParseDisposition(ry.Disposition)
			if err != nil {
				fail(line, 0, err)
			}
			r.Disposition = d
		}
		if ry.Priority != "" {
			pr, err := ParsePriority(ry.Priority)
			if err != nil {
				fail(line, 0, err)
			}
			r.Priority = pr
		}
		if ry.Queue != "" {
			r.Queue = ry.Queue
		}
		if ry.Flags != nil {
			r.Flags = nil
			for _, f := range ry.Flags {
				if !slices.Contains(KnownFlags(), Flag(f)) {
					fail(line, 0, fmt.Errorf("unknown flag %q", f))
				}
				r.Flags = r.Flags.Union(Flag(f))
			}
		}
		if err := checkKindFloor(r); err != nil {
			fail(line, 0, err)
		}
		// Condition.
		var prog *vm.Program
		if strings.TrimSpace(r.When) == "" {
			fail(line, 0, errors.New("when (the condition) is required"))
		} else {
			pg, err := expr.Compile(r.When, expr.Env(Env{}), expr.AsBool(), expr.MaxNodes(c.cfg.maxNodes),
				expr.DisableAllBuiltins(), expr.EnableBuiltin("len"), expr.EnableBuiltin("abs"),
				expr.EnableBuiltin("lower"), expr.EnableBuiltin("upper"), expr.EnableBuiltin("min"), expr.EnableBuiltin("max"))
			if err != nil {
				wl, wc := exprPosition(lines, line, err)
				fail(wl, wc, fmt.Errorf("when: %w", err))
			}
			prog = pg
		}
		// Message template.
		var tmpl *template.Template
		if strings.TrimSpace(r.Message) == "" {
			fail(line, 0, errors.New("message is required"))
		} else {
			t, err := template.New(id).Option("missingkey=error").Parse(r.Message)
			if err == nil {
				err = t.Execute(&bytes.Buffer{}, sampleMessageData())
			}
			if err != nil {
				ml := findKeyLine(lines, line, "message", "")
				fail(ml, 0, fmt.Errorf("message: %w", err))
			}
			tmpl = t
		}
		if !bad {
			out = append(out, compiledRule{Rule: r, prog: prog, tmpl: tmpl, sel: selectorOf(r.When)})
		}
	}
	return out
}

// kindDefaults gives the disposition, priority, queue and flags a rule of
// kind k sets when its file does not say.
func kindDefaults(k Kind) (Disposition, Priority, string, Flags) {
	switch k {
	case KindCritical:
		return Escalated, Stat, "oncall", Flags{FlagPhysicianHold}
	case KindRedFlag:
		return Escalated, Stat, "oncall", nil
	case KindAbnormal:
		return Held, Urgent, "physician", Flags{FlagPhysicianHold}
	case KindGuard:
		return ManualTriage, Urgent, "triage", nil
	}
	return DispositionNone, PriorityNone, "", nil
}

// checkKindFloor refuses rules whose outcome is weaker than their kind
// promises (e.g. a critical rule that only suggests).
func checkKindFloor(r Rule) error {
	switch r.Kind {
	case KindCritical, KindRedFlag:
		if r.Disposition != Escalated || r.Priority < ASAP {
			return fmt.Errorf("%s rules must be ESCALATED with priority asap or stat", r.Kind)
		}
	case KindAbnormal:
		if r.Disposition < Held || !r.Flags.Has(FlagPhysicianHold) {
			return errors.New("abnormal rules must be at least HELD and carry physician_hold")
		}
	case KindGuard:
		if r.Disposition < ManualTriage {
			return errors.New("guard rules must be at least MANUAL_TRIAGE")
		}
	}
	if r.Disposition != DispositionNone && r.Queue == "" {
		return errors.New("queue is required")
	}
	return nil
}

// findKeyLine returns the 1-based line, at or after line index from, of
// "key: value" (value "" matches any value), or 0.
func findKeyLine(lines []string, from int, key, value string) int {
	for i := from; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		t = strings.TrimPrefix(t, "- ")
		t = strings.TrimSpace(t)
		if !strings.HasPrefix(t, key+":") {
			continue
		}
		if value == "" {
			return i + 1
		}
		v := strings.TrimSpace(strings.TrimPrefix(t, key+":"))
		v = strings.Trim(v, `"'`)
		if v == value {
			return i + 1
		}
	}
	return 0
}

// exprPosition maps an expr compile error to a file position: the line and
// column of the offending token inside the rule's when: value.
func exprPosition(lines []string, ruleLine int, err error) (int, int) {
	wl := findKeyLine(lines, max(ruleLine-1, 0), "when", "")
	if wl == 0 {
		return ruleLine, 0
	}
	var fe *file.Error
	if !errors.As(err, &fe) {
		return wl, 0
	}
	src := lines[wl-1]
	idx := strings.Index(src, "when:")
	rest := src[idx+len("when:"):]
	val := strings.TrimLeft(rest, " ")
	col0 := idx + len("when:") + (len(rest) - len(val)) // 0-based column of value start
	eLine := max(fe.Line, 1)
	switch {
	case strings.HasPrefix(val, "|") || strings.HasPrefix(val, ">"):
		// Block scalar: the expression starts on the next line.
		l := wl + eLine
		if wl < len(lines) && l-1 < len(lines) {
			first := lines[wl] // the block's first line sets its indentation
			indent := len(first) - len(strings.TrimLeft(first, " "))
			return l, indent + fe.Column + 1
		}
		return wl, 0
	case strings.HasPrefix(val, `"`) || strings.HasPrefix(val, `'`):
		col0++
	}
	if eLine > 1 {
		return wl + eLine - 1, fe.Column + 1
	}
	return wl, col0 + fe.Column + 1
}
