package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"filippo.io/age"
	"github.com/BurntSushi/toml"
)

// Policy is a parsed policy file: which processes may be traced, within
// which limits, and how outputs must be written.
type Policy struct {
	Scope  Scope  `toml:"scope"`
	Limits Limits `toml:"limits"`
	Output Output `toml:"output"`
	// File is where the policy came from; "" for the built-in one.
	File string `toml:"-"`
}

// Scope says which processes may be traced. Executables and cgroups are
// glob patterns (path.Match); users are names or numeric ids. An empty allow
// list allows all; a deny rule wins over an allow rule.
type Scope struct {
	AllowExecutables []string `toml:"allow_executables"`
	DenyExecutables  []string `toml:"deny_executables"`
	AllowUsers       []string `toml:"allow_users"`
	DenyUsers        []string `toml:"deny_users"`
	AllowCgroups     []string `toml:"allow_cgroups"`
	DenyCgroups      []string `toml:"deny_cgroups"`
	// DefaultDenylist applies DefaultDenylist too; on unless set false.
	DefaultDenylist *bool `toml:"default_denylist"`
}

// Output says how reports are written.
type Output struct {
	// Directory, if set, is the only place outputs may be written.
	Directory string `toml:"directory"`
	// EncryptTo lists age recipients; when set, every output is encrypted to them.
	EncryptTo []string `toml:"encrypt_to"`
	// Retention, if positive, is how many outputs Directory keeps: older ones are removed.
	Retention int `toml:"retention"`
	// PublicMetrics lets --metrics-listen bind to an address other than loopback.
	PublicMetrics bool `toml:"public_metrics"`
}

// Default is the policy of a run that names none: the default limits and
// the built-in deny list.
func Default() *Policy {
	return &Policy{Limits: DefaultLimits()}
}

// Load reads and validates a policy file. An error names the file, the line
// and the field at fault; an unknown field is an error, never ignored.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

// Parse validates the policy in data, read from the file path, as Load does.
func Parse(path string, data []byte) (*Policy, error) {
	p := Default()
	p.File = path
	md, err := toml.Decode(string(data), p)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("policy %s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		k := undecoded[0]
		return nil, fmt.Errorf("policy %s: line %d: unknown field %s", path, lineOf(data, k[len(k)-1]), k)
	}
	if err := p.validate(); err != nil {
		line := 0
		var bad *fieldError
		if errors.As(err, &bad) {
			line = lineOf(data, bad.field[strings.LastIndex(bad.field, ".")+1:])
		}
		return nil, fmt.Errorf("policy %s: line %d: %w", path, line, err)
	}
	return p, nil
}

// lineOf returns the line where key is set in a TOML document, or 0.
func lineOf(data []byte, key string) int {
	re := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*=`)
	for i, line := range bytes.Split(data, []byte("\n")) {
		if re.Match(line) {
			return i + 1
		}
	}
	return 0
}

func (p *Policy) validate() error {
	for field, patterns := range map[string][]string{
		"scope.allow_executables": p.Scope.AllowExecutables, "scope.deny_executables": p.Scope.DenyExecutables,
		"scope.allow_cgroups": p.Scope.AllowCgroups, "scope.deny_cgroups": p.Scope.DenyCgroups,
	} {
		for _, pat := range patterns {
			if _, err := filepath.Match(pat, ""); err != nil || pat == "" {
				return badField(field, strconv.Quote(pat), "not a glob pattern")
			}
		}
	}
	for field, users := range map[string][]string{"scope.allow_users": p.Scope.AllowUsers, "scope.deny_users": p.Scope.DenyUsers} {
		for _, u := range users {
			if u == "" {
				return badField(field, nil, "empty user")
			}
		}
	}
	if p.Output.Directory != "" && !filepath.IsAbs(p.Output.Directory) {
		return badField("output.directory", strconv.Quote(p.Output.Directory), "must be an absolute path")
	}
	if _, err := p.Recipients(nil); err != nil {
		return err
	}
	if p.Output.Retention < 0 {
		return badField("output.retention", p.Output.Retention, "must not be negative")
	}
	return p.Limits.Validate()
}

// fieldError is a bad value in a policy field (or a flag that stands for one).
type fieldError struct {
	field   string // as the policy file names it, with its table: limits.max_live
	value   any    // the value, if worth showing
	problem string
	err     error // the cause, if any
}

func (e *fieldError) Error() string {
	msg := e.field + ": " + e.problem
	if e.value != nil {
		msg = fmt.Sprintf("%s %v: %s", e.field, e.value, e.problem)
	}
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *fieldError) Unwrap() error { return e.err }

// badField returns the error of field holding value, which has problem.
func badField(field string, value any, problem string) error {
	return &fieldError{field: field, value: value, problem: problem}
}

// Recipients parses the policy's and the extra age recipients together.
func (p *Policy) Recipients(extra []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, field := range []struct {
		name string
		list []string
	}{{"output.encrypt_to", p.Output.EncryptTo}, {"--encrypt-to", extra}} {
		for _, s := range field.list {
			r, err := age.ParseX25519Recipient(s)
			if err != nil {
				return nil, &fieldError{field: field.name, value: strconv.Quote(s), problem: "not an age recipient", err: err}
			}
			out = append(out, r)
		}
	}
	return out, nil
}
