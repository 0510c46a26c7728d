// Package termsafe makes text from other people (a module's error output, a
// publisher's description) safe to show on a terminal: control characters,
// which could clear the screen, recolour it, retitle the window or rewrite
// what came before, are shown as escapes instead of being obeyed.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line returns s on one line: every control character, newlines and tabs
// included, is written as an escape such as \n or \x1b.
func Line(s string) string { return clean(s, false) }

// Text returns s with its control characters escaped, keeping newlines
// and tabs, for text of several lines.
func Text(s string) string { return clean(s, true) }

func clean(s string, keepLines bool) string {
	if safe(s, keepLines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case (r == '\n' || r == '\t') && keepLines:
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isHidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// safe reports whether s needs no escaping, the common case.
func safe(s string, keepLines bool) bool {
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 && !(keepLines && (r == '\n' || r == '\t')) || r == 0x7f || isHidden(r) {
			return false
		}
	}
	return true
}

// isHidden reports the C1 controls (which some terminals obey as escape
// sequences) and the bidirectional overrides, which reorder what is shown.
func isHidden(r rune) bool {
	return r >= 0x80 && r < 0xa0 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}
