package main

import "github.com/mtrace/mtrace/sink"

// formatFor returns the report format asked for, or the one the output
// file's extension names; a mistake in either is a usage error.
func formatFor(format, output string) (string, error) {
	f, err := sink.FormatFor(format, output)
	if err != nil {
		return "", usageError{err}
	}
	return f, nil
}
