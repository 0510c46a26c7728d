//go:build !wasip1

package guest

import "testing"

// TestOutsideModule checks that off wasip1 every call fails, saying why,
// rather than panicking.
func TestOutsideModule(t *testing.T) {
	s := Space("alice/notes")
	_, err1 := s.Get("k")
	_, err2 := s.Open("k")
	err3 := s.Put("k", nil)
	err4 := s.Delete("k")
	_, err5 := s.List("")
	_, err6 := Open("bafy")
	_, err7 := Add([]byte("x"))
	_, err8 := Call("wc", nil)
	for i, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
		if err != errNotModule {
			t.Errorf("call %d: %v, want %v", i+1, err, errNotModule)
		}
	}
}
