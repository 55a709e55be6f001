// Package recording runs one recording (mtrace record): it opens the run's outputs
// before tracing starts, attaches the tracer through its caller, serves
// and writes the metrics, writes a report on each SIGHUP and at the end,
// trimmed to fit the output limit, and prunes the older reports.
//
// It owns the order of a recording's steps, not their rules: what may be
// traced, for how long, and where and how each file is written come
// resolved from policy (policy.Effective), and every file goes through
// sink.Output. It never parses flags or reads a policy file, and it never
// writes a file any other way.
package recording
