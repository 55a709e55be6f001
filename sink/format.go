package sink

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// formatList names the report formats in messages.
const formatList = "text, json, html, pprof or folded"

// FormatFor returns the report format asked for, or without one, the one
// the output file's extension names (text for stdout). Its errors are
// mistakes in how mtrace was called.
func FormatFor(format, output string) (string, error) {
	if format == "" {
		name := strings.ToLower(output)
		switch {
		case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".json.age"):
			return "json", nil
		case strings.HasSuffix(name, ".pb.gz"), strings.HasSuffix(name, ".pprof"), strings.HasSuffix(name, ".pb"):
			return "pprof", nil
		case strings.HasSuffix(name, ".folded"):
			return "folded", nil
		case strings.HasSuffix(name, ".html"), strings.HasSuffix(name, ".htm"):
			return "html", nil
		case output == "", filepath.Ext(name) == ".txt":
			return "text", nil
		}
		return "", fmt.Errorf("cannot tell the report format from %q: give --format %s", output, formatList)
	}
	if slices.Contains(Formats, format) {
		return format, nil
	}
	return "", fmt.Errorf("--format %q: want %s", format, formatList)
}

// WriterFor returns the writer of r in format (one of Formats); the text
// report shows its top stacks.
func WriterFor(r *Report, format string, top int) func(io.Writer) error {
	return func(w io.Writer) error {
		switch format {
		case "json":
			return WriteJSON(w, r)
		case "pprof":
			return WritePprof(w, r)
		case "folded":
			return WriteFolded(w, r)
		case "html":
			return WriteHTML(w, r)
		}
		return WriteText(w, r, top)
	}
}
