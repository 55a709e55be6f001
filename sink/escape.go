package sink

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s, a string that comes from a target (a path, argv[0], a
// cgroup, a symbol or file name), fit for a terminal or a line-based file:
// C0 controls and DEL become \xHH, C1 controls \u00HH, each byte of invalid
// UTF-8 \xHH, and a backslash \\, so that nothing in s can move the cursor,
// end a line, or pass for an escape. Anything else, and so any clean name,
// is kept as it is.
func Escape(s string) string {
	return escape(s, "")
}

// escape is Escape that also writes the characters in extra, which are
// ASCII, as \xHH.
func escape(s, extra string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return needsEscape(r, extra) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !needsEscape(r, extra) || r == utf8.RuneError: // U+FFFD itself is valid
			b.WriteString(s[i : i+n])
		case r == '\\':
			b.WriteString(`\\`)
		case r >= 0x80:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\x%02x`, r)
		}
		i += n
	}
	return b.String()
}

// needsEscape says whether escape rewrites r: a C0 or C1 control, DEL, a
// backslash, one of extra, or utf8.RuneError, which stands for a byte of
// invalid UTF-8 as ranging over a string yields it.
func needsEscape(r rune, extra string) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\\' || r == utf8.RuneError || strings.ContainsRune(extra, r)
}
