package sink

import (
	"errors"
	"fmt"
	"io"

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
