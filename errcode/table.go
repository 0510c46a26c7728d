package errcode

import "errors"

// Pair is one row of a Table: a name a layer sends on its wire for a
// failure, and the sentinel it stands for.
type Pair[K comparable] struct {
	Key K
	Err error
}

// Table is a layer's wire table of errors: the names it sends for its
// sentinels, in the order it tries them. It is a slice, not a map, so
// that lookups are deterministic: the first row that matches wins both
// ways, and an error of two kinds always gets the same name. Put the most
// specific rows first.
type Table[K comparable] []Pair[K]

// KeyOf returns the key of the first row whose sentinel errors.Is finds
// in err, and false if none does (or err is nil).
func (t Table[K]) KeyOf(err error) (K, bool) {
	if err != nil {
		for _, p := range t {
			if errors.Is(err, p.Err) {
				return p.Key, true
			}
		}
	}
	var zero K
	return zero, false
}

// ErrOf returns the sentinel of the first row with key, or nil if no row
// has it (a name from a newer peer, say).
func (t Table[K]) ErrOf(key K) error {
	for _, p := range t {
		if p.Key == key {
			return p.Err
		}
	}
	return nil
}
