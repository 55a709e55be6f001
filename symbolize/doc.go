// Package symbolize turns return addresses in a process into frames
// (function and module), from a snapshot of the process's memory mappings
// taken when it is first seen and the ELF symbol tables of the mapped files.
//
// It never touches BPF and never returns raw absolute addresses: a frame
// without a symbol is named by its module and the offset into it.
package symbolize
