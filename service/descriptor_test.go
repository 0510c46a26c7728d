package service

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/wasm"
)

// testKey is a fixed key, so that seeds and failures are repeatable.
var testKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

var testModule = cid.MustParse("bafkreidfdrlkeq4m4xnxuyx6iae76fdm4wgl5d4xzsb77ixhyqwumhz244")

func testDescriptor(t testing.TB) *Descriptor {
	t.Helper()
	d := &Descriptor{
		Name: "upper", Version: "1.0.0", Description: "upper-cases text",
		Module: testModule, Input: "text/plain", Output: "text/plain",
		Limits: wasm.Limits{Memory: 32 << 20, Timeout: 5 * time.Second},
		Price:  Price{PerCall: 3, PerCPUSecond: 100},
	}
	if err := d.sign(testKey, time.Unix(1764000000, 0)); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDescriptorRoundTrip(t *testing.T) {
	d := testDescriptor(t)
	got, err := Parse(d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != d.Name || got.Version != d.Version || got.Description != d.Description ||
		!got.Module.Equals(d.Module) || got.Input != d.Input || got.Output != d.Output ||
		got.Limits != d.Limits || got.Price != d.Price || got.Publisher != d.Publisher ||
		!got.Created.Equal(d.Created) || !got.ID().Equals(d.ID()) {
		t.Fatalf("parsed %+v\nsigned %+v", got, d)
	}
	// Signing is deterministic: the same descriptor, key and time give
	// the same bytes, hence the same CID.
	if again := testDescriptor(t); !again.ID().Equals(d.ID()) {
		t.Fatalf("signing twice gave %s and %s", d.ID(), again.ID())
	}
}

func TestDescriptorRules(t *testing.T) {
	for name, change := range map[string]func(*Descriptor){
		"empty name":        func(d *Descriptor) { d.Name = "" },
		"upper-case name":   func(d *Descriptor) { d.Name = "Upper" },
		"pipe in name":      func(d *Descriptor) { d.Name = "a|b" },
		"long name":         func(d *Descriptor) { d.Name = strings.Repeat("a", 65) },
		"space in version":  func(d *Descriptor) { d.Version = "1 0" },
		"long description":  func(d *Descriptor) { d.Description = strings.Repeat("x", 5000) },
		"bad UTF-8":         func(d *Descriptor) { d.Description = "\xff" },
		"module and stages": func(d *Descriptor) { d.Stages = []cid.Cid{testModule} },
		"nothing to run":    func(d *Descriptor) { d.Module = cid.Undef },
		"negative limit":    func(d *Descriptor) { d.Limits.Memory = -1 },
		"too many stages": func(d *Descriptor) {
			d.Module = cid.Undef
			for range MaxStages + 1 {
				d.Stages = append(d.Stages, testModule)
			}
		},
	} {
		d := testDescriptor(t)
		change(d)
		if err := d.sign(testKey, time.Now()); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s: signing gave %v, want ErrBadDescriptor", name, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good := testDescriptor(t).Bytes()
	for name, data := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("not cbor at all"),
		"truncated": good[:len(good)-3],
		"oversized": make([]byte, MaxDescriptorSize+1),
		"trailing":  append(append([]byte(nil), good...), 0),
	} {
		if _, err := Parse(data); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s: %v, want ErrBadDescriptor", name, err)
		}
	}
}

// FuzzParse feeds the descriptor decoder arbitrary bytes: it must return
// a descriptor or an error, never panic, and whatever it accepts must be
// signed and follow the rules.
func FuzzParse(f *testing.F) {
	f.Add(testDescriptor(f).Bytes())
	body, sig, _ := Envelope(testDescriptor(f).Bytes())
	f.Add(Seal(body, nil))
	f.Add(Seal(body[:len(body)/2], sig))
	f.Add([]byte{0xa2, 0x01, 0x40, 0x02, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrBadDescriptor) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error %v wraps neither ErrBadDescriptor nor ErrBadSignature", err)
			}
			return
		}
		if err := d.check(); err != nil {
			t.Fatalf("accepted a descriptor that breaks the rules: %v", err)
		}
		if !d.ID().Defined() || len(d.Bytes()) != len(data) {
			t.Fatal("accepted descriptor has no CID or other bytes")
		}
	})
}

// FuzzRunRequest feeds a callee's view of a run request arbitrary bytes:
// the request's decoding, its limits and its descriptor must each end in
// a value or an error, never a panic.
func FuzzRunRequest(f *testing.F) {
	good, _ := wire.Marshal(runRequest{Descriptor: testDescriptor(f).Bytes(), Input: []byte("x"), Limits: &limitsWire{Memory: 1 << 20, TimeoutMS: 100}})
	f.Add(good)
	bad, _ := wire.Marshal(runRequest{Limits: &limitsWire{TimeoutMS: -1}})
	f.Add(bad)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req runRequest
		if wire.Unmarshal(data, &req) != nil {
			return
		}
		if l, err := req.Limits.limits(); err == nil && (l.Memory < 0 || l.Timeout < 0 || l.Timeout > maxTimeout) {
			t.Fatalf("limits %+v accepted", l)
		}
		if _, err := Parse(req.Descriptor); err != nil && !errors.Is(err, ErrBadDescriptor) && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("descriptor error %v is of no known kind", err)
		}
	})
}
