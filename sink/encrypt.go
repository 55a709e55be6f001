package sink

import (
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
