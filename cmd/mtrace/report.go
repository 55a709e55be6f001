package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"unsafe"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "render a saved report again, decrypting it if needed",
		ArgsUsage: "FILE",
		Description: `Reads a report that mtrace record wrote as JSON or as a pprof profile,
encrypted with age or not, and writes it as text, JSON, pprof or folded stacks.

Examples:
   mtrace report report.json
   mtrace report --format folded profile.pb.gz > stacks.folded
   mtrace report --identity key.txt --format json report.json.age
   mtrace report --diff-base yesterday.pb.gz today.pb.gz

A report larger than the policy's max_output_bytes (256 MiB by default), a
profile that inflates to more (mtrace record never writes one), or one
that would take more than 4 (JSON) or 32 (pprof) times as much decoded, is
refused.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "identity", Aliases: []string{"i"}, Usage: "decrypt with the age identities in `FILE`"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "output `FORMAT`: text, json, html, pprof or folded; without it, the --output extension decides (.json, .html, .pb.gz, .folded, else text)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (mode 0600) instead of stdout; in a directory of the sudo user, as that user"},
			&cli.IntFlag{Name: "top", Value: 10, Usage: "show the top `N` stacks in the text report"},
			&cli.StringFlag{Name: "diff-base", Usage: "show only what grew since the saved report `OLD` (same executables and stacks)"},
			&cli.StringFlag{Name: "policy", Usage: "read reports of at most the policy `FILE`'s max_output_bytes (default: 256 MiB), inflated or decrypted"},
		},
		Action: renderReport,
	}
}

func renderReport(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("report: give one report FILE")
	}
	format, err := formatFor(c.String("format"), c.String("output"))
	if err != nil {
		return err
	}
	if format == "pprof" && c.String("output") == "" {
		return usagef("report: a pprof profile needs --output FILE")
	}
	limits := policy.DefaultLimits()
	if file := c.String("policy"); file != "" {
		pol, err := policy.Load(file)
		if err != nil {
			return err
		}
		limits = pol.Limits
	}
	r, err := loadReport(c.Args().First(), c.String("identity"), limits.MaxOutputBytes)
	if err != nil {
		return err
	}
	if base := c.String("diff-base"); base != "" {
		old, err := loadReport(base, c.String("identity"), limits.MaxOutputBytes)
		if err != nil {
			return err
		}
		r = sink.Diff(r, old)
	}
	write := reportWriter(r, format, c.Int("top"))
	if out := c.String("output"); out != "" {
		return sink.WriteFile(out, invokingUser(), write)
	}
	return write(c.App.Writer)
}

// loadReport reads a saved report of at most limit bytes (decrypted and
// inflated), decrypting it if it is encrypted.
func loadReport(path, identity string, limit int64) (*sink.Report, error) {
	data, err := readLimited(path, sink.EncryptedSize(limit))
	if err != nil {
		return nil, err
	}
	if sink.IsEncrypted(data) {
		if identity == "" {
			return nil, usagef("report %s is encrypted: give --identity FILE", path)
		}
		if data, err = sink.Decrypt(data, identity, path, limit); err != nil {
			return nil, err
		}
	}
	r, err := parseReport(data, limit)
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	if r.Schema != sink.Schema {
		return nil, fmt.Errorf("read report %s: schema %d, this mtrace reads %d", path, r.Schema, sink.Schema)
	}
	return r, nil
}

// parseReport reads a JSON report or a pprof profile mtrace wrote, which
// inflates to at most limit bytes.
func parseReport(data []byte, limit int64) (*sink.Report, error) {
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes (max_output_bytes)", limit)
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		if n := decodedSize(data); n > decodedLimit*limit {
			return nil, fmt.Errorf("would take %d bytes decoded, more than %d times max_output_bytes", n, decodedLimit)
		}
		var r sink.Report
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, err
		}
		return &r, nil
	}
	return sink.ReadPprof(data, limit)
}

// decodedLimit bounds the memory a decoded JSON report may take, in times
// max_output_bytes: a report mtrace writes takes about twice its size.
const decodedLimit = 4

// elementSize is what one element of each array of a JSON report takes
// once decoded, twice over for the slack of a growing slice.
var elementSize = map[string]int64{
	"processes": 2 * int64(unsafe.Sizeof(sink.Process{})), "stacks": 2 * int64(unsafe.Sizeof(sink.Stack{})),
	"frames": 2 * int64(unsafe.Sizeof(sink.Frame{})), "allocators": 2 * int64(unsafe.Sizeof("")),
	"size_histogram": 2 * int64(unsafe.Sizeof(sink.Bucket{})), "lifetime_histogram": 2 * int64(unsafe.Sizeof(sink.Bucket{})),
	"timeline": 2 * int64(unsafe.Sizeof(sink.Point{})),
}

// decodedSize estimates the memory a JSON report takes once decoded,
// without decoding it: its text (strings are copied), and the elements of
// its arrays by what they hold. An array under a name the report does not
// have is not decoded, but counted too: the estimate only errs high. It
// stops at malformed JSON, which json.Unmarshal then refuses.
func decodedSize(data []byte) int64 {
	type level struct {
		array     bool
		name      string // the array's
		expectKey bool   // the object's
	}
	var levels []level
	size, name := int64(len(data)), ""
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return size
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			levels = levels[:len(levels)-1]
			continue
		}
		if n := len(levels); n > 0 {
			switch top := &levels[n-1]; {
			case top.array:
				size += elementSize[top.name]
			case top.expectKey:
				name, _ = tok.(string)
				top.expectKey = false
				continue
			default:
				top.expectKey = true
			}
		}
		switch tok {
		case json.Delim('{'):
			levels = append(levels, level{expectKey: true})
		case json.Delim('['):
			levels = append(levels, level{array: true, name: name})
		}
	}
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return sink.ReadAtMost(f, limit, size, "read report "+path)
}
