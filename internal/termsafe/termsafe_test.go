package termsafe

import "testing"

func TestEscapes(t *testing.T) {
	for _, tc := range []struct{ in, line, text string }{
		{"plain text, ünïcode ok", "plain text, ünïcode ok", "plain text, ünïcode ok"},
		{"\x1b[2J\x1b]0;pwned\x07red", `\x1b[2J\x1b]0;pwned\x07red`, `\x1b[2J\x1b]0;pwned\x07red`},
		{"line 1\nline 2\tx", `line 1\nline 2\tx`, "line 1\nline 2\tx"},
		{"back\rover\x7f", `back\rover\x7f`, `back\rover\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`, `c1 \u009b31m`},
		{"bidi \u202eevil", `bidi \u202eevil`, `bidi \u202eevil`},
		{"bad \xff utf8", `bad \xff utf8`, `bad \xff utf8`},
	} {
		if got := Line(tc.in); got != tc.line {
			t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := Text(tc.in); got != tc.text {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

func FuzzLine(f *testing.F) {
	f.Add("\x1b[31mred\n")
	f.Fuzz(func(t *testing.T, s string) {
		out := Line(s)
		for _, r := range out {
			if r < 0x20 || r == 0x7f || isHidden(r) {
				t.Fatalf("Line(%q) = %q keeps control %U", s, out, r)
			}
		}
		if safe(s, false) && out != s {
			t.Fatalf("Line changed safe text %q", s)
		}
	})
}
