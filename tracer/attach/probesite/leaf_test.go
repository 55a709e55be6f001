package probesite

import "testing"

// TestLeaf checks Leaf on hand-assembled code at address 0x1000: plain
// code is a leaf; a call to a probe site, a jump back to the function's
// own site, or a call through a pointer is not.
func TestLeaf(t *testing.T) {
	sites := map[uint64]bool{0x1000: true, 0x2000: true}
	for name, tc := range map[string]struct {
		code []byte
		leaf bool
	}{
		"plain":                {[]byte{0x55, 0x48, 0x89, 0xe5, 0xe8, 0xf0, 0x0f, 0x00, 0x00, 0x5d, 0xc3}, true}, // push; mov; call 0x1ff9 (not a site); pop; ret
		"call a site":          {[]byte{0x55, 0xe8, 0xfa, 0x0f, 0x00, 0x00, 0x5d, 0xc3}, false},                  // call 0x2000
		"jump to its own site": {[]byte{0x48, 0x85, 0xff, 0x75, 0xfb, 0xc3}, false},                              // test; jne 0x1000
		"call through memory":  {[]byte{0xff, 0x15, 0x00, 0x10, 0x00, 0x00, 0xc3}, false},                        // call *0x1000(%rip)
		"undecodable":          {[]byte{0x90, 0xe8, 0x00}, false},                                                // nop; a call cut short
	} {
		if got := Leaf(tc.code, 0x1000, sites); got != tc.leaf {
			t.Errorf("%s: Leaf %v, want %v", name, got, tc.leaf)
		}
	}
}
