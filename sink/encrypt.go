package sink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
)

// Encrypted wraps a report writer so that, with recipients, what it writes
// is encrypted to them with age; without, it writes plain text.
func Encrypted(recipients []age.Recipient, write func(io.Writer) error) func(io.Writer) error {
	if len(recipients) == 0 {
		return write
	}
	return func(w io.Writer) error {
		enc, err := age.Encrypt(w, recipients...)
		if err != nil {
			return fmt.Errorf("encrypt report: %w", err)
		}
		if err := write(enc); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("encrypt report: %w", err)
		}
		return nil
	}
}

// IsEncrypted reports whether data is an age file, as Encrypted writes
// reports with recipients.
func IsEncrypted(data []byte) bool {
	return bytes.HasPrefix(data, []byte("age-encryption.org/"))
}

// EncryptedSize bounds the size of an age file holding limit bytes: a
// header, and 16 bytes per 64 KiB chunk.
func EncryptedSize(limit int64) int64 {
	return limit + limit/4096 + 1<<20
}

// Decrypt returns the report that Encrypted encrypted in data, with the age
// identities in identityFile, refusing more than limit bytes of it. name
// names the report in errors.
func Decrypt(data []byte, identityFile, name string, limit int64) ([]byte, error) {
	keys, err := os.Open(identityFile)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	defer keys.Close()
	ids, err := age.ParseIdentities(keys)
	if err != nil {
		return nil, fmt.Errorf("read identity %s: %w", identityFile, err)
	}
	r, err := age.Decrypt(bytes.NewReader(data), ids...)
	if err != nil {
		return nil, fmt.Errorf("decrypt report %s: %w", name, err)
	}
	return ReadAtMost(r, limit, int64(len(data)), "decrypt report "+name)
}

// ReadAtMost reads all of r, refusing more than limit bytes, into a buffer
// made for size bytes (it grows past them only if r holds more); what names
// the read in errors.
func ReadAtMost(r io.Reader, limit, size int64, what string) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(min(max(size, 0), limit)) + bytes.MinRead)
	if _, err := b.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if int64(b.Len()) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes (max_output_bytes)", what, limit)
	}
	return b.Bytes(), nil
}

// ErrTooLarge means a report grew past its size limit.
var ErrTooLarge = errors.New("report larger than the output limit")

// Limited wraps a report writer so that writing more than max bytes fails
// (and WriteFile keeps the previous report). A pprof profile's inflated
// size must stay within max too.
func Limited(max int64, write func(io.Writer) error) func(io.Writer) error {
	return func(w io.Writer) error {
		return write(&limitWriter{w: w, left: max, max: max})
	}
}

type limitWriter struct {
	w         io.Writer
	left, max int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, fmt.Errorf("%w (%d bytes)", ErrTooLarge, l.max)
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}
