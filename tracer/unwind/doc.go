// Package unwind turns the call-frame information of an ELF file (.eh_frame,
// or .debug_frame where that is all there is) into the rows the BPF unwinder
// looks up: for each range of file offsets of code, how to find the caller's
// frame from the current one on x86-64 (Row, Table, Build).
//
// It never touches the kernel, never reads a process's memory, and never
// trusts a size or offset from the file: sections are read within Limits,
// every instruction is decoded within its entry's bytes, and a malformed
// file yields an error, never a panic.
package unwind
