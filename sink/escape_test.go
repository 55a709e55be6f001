package sink

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/python3.12":         "/usr/bin/python3.12",
		"operator new(unsigned long)": "operator new(unsigned long)",
		"héllo wörld → ok":            "héllo wörld → ok",
		"a\x1b[2Jb":                   `a\x1b[2Jb`,
		"line\r\nforged\ttab\x07":     `line\x0d\x0aforged\x09tab\x07`,
		"del\x7f c1\u009b nel\u0085":  `del\x7f c1\u009b nel\u0085`,
		"bad\xff\xfe utf8\xc3":        `bad\xff\xfe utf8\xc3`,
		`back\slash`:                  `back\\slash`,
		"\ufffd kept":                 "\ufffd kept",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := escape("a;b\nc", ";"); got != `a\x3bb\x0ac` {
		t.Errorf(`escape with ";" = %q`, got)
	}
	// Every byte, alone and after a lead byte: the result is valid UTF-8
	// with no control character in it.
	for i := range 256 {
		for _, s := range []string{string([]byte{byte(i)}), string([]byte{0xc2, byte(i)}), "x" + string(rune(i))} {
			got := Escape(s)
			if !utf8.ValidString(got) || strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }) {
				t.Errorf("Escape(%q) = %q", s, got)
			}
		}
	}
}
