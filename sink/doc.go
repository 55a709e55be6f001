// Package sink writes mtrace's reports: a terminal text report and JSON.
//
// It works on plain aggregates (Report) and never sees raw addresses or
// anything read from a target beyond its pid and executable path. Files are
// written 0600 through a temporary file and a rename, relative to an output
// directory opened once without following symlinks (Dir), as the user the
// directory belongs to when that is the user mtrace works for. Every text-like
// writer passes the names it prints, which come from targets, through Escape.
package sink
