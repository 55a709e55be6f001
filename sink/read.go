package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"unsafe"
)

// ErrNeedIdentity is why an encrypted report cannot be read without an identity file.
var ErrNeedIdentity = errors.New("encrypted: give --identity FILE")

// LoadReport reads a report mtrace saved, as JSON or a pprof profile, of at
// most limit bytes decrypted and inflated, decrypting it with the age
// identities in identityFile if it is encrypted.
func LoadReport(path, identityFile string, limit int64) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	data, err := ReadAtMost(f, EncryptedSize(limit), size, "read report "+path)
	if err != nil {
		return nil, err
	}
	if IsEncrypted(data) {
		if identityFile == "" {
			return nil, fmt.Errorf("report %s is %w", path, ErrNeedIdentity)
		}
		if data, err = Decrypt(data, identityFile, path, limit); err != nil {
			return nil, err
		}
	}
	r, err := ParseReport(data, limit)
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("read report %s: schema %d, this mtrace reads %d", path, r.Schema, Schema)
	}
	return r, nil
}

// ParseReport reads a JSON report or a pprof profile mtrace wrote, which
// inflates to at most limit bytes.
func ParseReport(data []byte, limit int64) (*Report, error) {
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes (max_output_bytes)", limit)
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		if n := jsonDecodedSize(data); n > jsonDecodedLimit*limit {
			return nil, fmt.Errorf("would take %d bytes decoded, more than %d times max_output_bytes", n, jsonDecodedLimit)
		}
		var r Report
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, err
		}
		return &r, nil
	}
	return ReadPprof(data, limit)
}

// jsonDecodedLimit bounds the memory a decoded JSON report may take, in
// times max_output_bytes: a report mtrace writes takes about twice its size.
const jsonDecodedLimit = 4

// jsonElementSize is what one element of each array of a JSON report takes
// once decoded, twice over for the slack of a growing slice.
var jsonElementSize = map[string]int64{
	"processes": 2 * int64(unsafe.Sizeof(Process{})), "stacks": 2 * int64(unsafe.Sizeof(Stack{})),
	"frames": 2 * int64(unsafe.Sizeof(Frame{})), "allocators": 2 * int64(unsafe.Sizeof("")),
	"size_histogram": 2 * int64(unsafe.Sizeof(Bucket{})), "lifetime_histogram": 2 * int64(unsafe.Sizeof(Bucket{})),
	"timeline": 2 * int64(unsafe.Sizeof(Point{})),
}

// jsonDecodedSize estimates the memory a JSON report takes once decoded,
// without decoding it: its text (strings are copied), and the elements of
// its arrays by what they hold. An array under a name the report does not
// have is not decoded, but counted too: the estimate only errs high. It
// stops at malformed JSON, which json.Unmarshal then refuses.
func jsonDecodedSize(data []byte) int64 {
	type level struct {
		array     bool
		name      string // the array's
		expectKey bool   // the object's
	}
	var levels []level
	size, name := int64(len(data)), ""
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return size
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			levels = levels[:len(levels)-1]
			continue
		}
		if n := len(levels); n > 0 {
			switch top := &levels[n-1]; {
			case top.array:
				size += jsonElementSize[top.name]
			case top.expectKey:
				name, _ = tok.(string)
				top.expectKey = false
				continue
			default:
				top.expectKey = true
			}
		}
		switch tok {
		case json.Delim('{'):
			levels = append(levels, level{expectKey: true})
		case json.Delim('['):
			levels = append(levels, level{array: true, name: name})
		}
	}
}
