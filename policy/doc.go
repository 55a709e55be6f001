// Package policy says what mtrace may trace and how much it may cost:
// the resource limits every run is held to, each with a safe default.
package policy
