// Package sink owns every writer of what mtrace outputs: the text, JSON,
// pprof, folded and HTML reports, report diffs and trimming, Prometheus
// metrics, and the one writer every file of a run goes through (Output),
// which enforces the effective policy's output rules: the directory, mode
// 0600, encryption, the size limit and retention. It also reads back the
// reports it wrote (LoadReport: JSON or pprof, encrypted or not).
//
// It works on plain aggregates (Report) and never sees raw addresses or
// anything read from a target beyond its pid and executable path. It
// decides no rule itself: policy.Resolve does, and hands it a policy.File.
// Files are written 0600 through a temporary file and a rename, relative to
// an output directory opened once without following symlinks (Dir), as the
// user the directory belongs to when that is the user mtrace works for.
// Every text-like writer passes the names it prints, which come from
// targets, through Escape.
package sink
