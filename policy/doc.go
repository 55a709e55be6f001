// Package policy says what mtrace may trace, how much it may cost, and how
// it must write its outputs: the policy file's schema, its parser, the
// built-in deny list of secret holders, and the resource limits with their
// safe defaults.
package policy
