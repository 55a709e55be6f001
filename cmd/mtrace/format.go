package main

import (
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mtrace/mtrace/sink"
)

// reportFormats are the formats record and report write.
const reportFormats = "text, json, html, pprof or folded"

// formatFor returns the report format asked for, or without one, the one
// the output file's extension names (text for stdout).
func formatFor(format, output string) (string, error) {
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
		return "", usagef("cannot tell the report format from %q: give --format %s", output, reportFormats)
	}
	if slices.Contains(sink.Formats, format) {
		return format, nil
	}
	return "", usagef("--format %q: want %s", format, reportFormats)
}

// reportWriter returns the writer of a report in format.
func reportWriter(r *sink.Report, format string, top int) func(io.Writer) error {
	return func(w io.Writer) error {
		switch format {
		case "json":
			return sink.WriteJSON(w, r)
		case "pprof":
			return sink.WritePprof(w, r)
		case "folded":
			return sink.WriteFolded(w, r)
		case "html":
			return sink.WriteHTML(w, r)
		}
		return sink.WriteText(w, r, top)
	}
}
