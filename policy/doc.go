// Package policy says what mtrace may trace, how much it may cost, and how
// it must write its outputs: the policy file's schema, its parser, the
// built-in deny list of secret holders, the resource limits with their
// safe defaults, and Resolve, which turns a policy and the command line's
// overrides into the one effective configuration (Effective) that the
// tracer and the output writer take.
//
// Every rule is decided here, once; policy never opens an output, loads a
// BPF program or reads a target beyond what Check is given.
package policy
