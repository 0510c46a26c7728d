//go:build wasip1

package guest

import (
	"math"
	"unsafe"
)

// The imports of nube_v1, as HOSTAPI.md declares them. A pointer is an
// offset into this module's linear memory: Go lowers unsafe.Pointer to an
// i32 for a wasmimport, and keeps what it points to alive for the call.

//go:wasmimport nube_v1 error_message
func nubeErrorMessage(buf unsafe.Pointer, bufCap uint32) int32

//go:wasmimport nube_v1 log
func nubeLog(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport nube_v1 read
func nubeRead(h int32, buf unsafe.Pointer, bufCap uint32) int64

//go:wasmimport nube_v1 close
func nubeClose(h int32) int32

//go:wasmimport nube_v1 size
func nubeSize(h int32) int64

//go:wasmimport nube_v1 open
func nubeOpen(path unsafe.Pointer, pathLen uint32) int64

//go:wasmimport nube_v1 add
func nubeAdd(data unsafe.Pointer, dataLen uint32, out unsafe.Pointer, outCap uint32) int32

//go:wasmimport nube_v1 space_get
func nubeSpaceGet(space unsafe.Pointer, spaceLen uint32, key unsafe.Pointer, keyLen uint32) int64

//go:wasmimport nube_v1 space_put
func nubeSpacePut(space unsafe.Pointer, spaceLen uint32, key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32) int32

//go:wasmimport nube_v1 space_delete
func nubeSpaceDelete(space unsafe.Pointer, spaceLen uint32, key unsafe.Pointer, keyLen uint32) int32

//go:wasmimport nube_v1 space_list
func nubeSpaceList(space unsafe.Pointer, spaceLen uint32, prefix unsafe.Pointer, prefixLen uint32) int64

//go:wasmimport nube_v1 call
func nubeCall(ref unsafe.Pointer, refLen uint32, in unsafe.Pointer, inLen uint32) int64

// str and slice give a string's or slice's (pointer, length) for the host.
// Empty ones are passed as (nil, 0), which the host reads as nothing,
// rather than indexing their first byte.
func str(s string) (unsafe.Pointer, uint32) {
	if len(s) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(unsafe.StringData(s)), length(len(s))
}

func slice(b []byte) (unsafe.Pointer, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(unsafe.SliceData(b)), length(len(b))
}

// length caps n at what an i32 length can say; the host refuses what is
// that big anyway, so the cap only stops a wrap to a small number.
func length(n int) uint32 {
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return uint32(n)
}

// hostError returns the error of a call to op that returned code, with the
// host's message for it.
func hostError(op string, code int64) error {
	var buf [256]byte
	n := int(nubeErrorMessage(unsafe.Pointer(&buf[0]), uint32(len(buf))))
	msg := ""
	switch {
	case n > len(buf) && n <= 64<<10:
		// The message is longer than buf: ask again with room for it.
		big := make([]byte, n)
		m := int(nubeErrorMessage(unsafe.Pointer(&big[0]), uint32(n)))
		msg = string(big[:min(max(m, 0), n)])
	case n > 0:
		msg = string(buf[:min(n, len(buf))])
	}
	c := CodeFailed
	if code >= math.MinInt32 {
		c = int(code)
	}
	return &Error{Code: c, Op: op, Message: msg}
}

// handle checks what a function that returns a handle returned.
func handle(op string, r int64) (int32, error) {
	if r < 0 {
		return 0, hostError(op, r)
	}
	if r == 0 || r > math.MaxInt32 {
		return 0, &Error{Code: CodeFailed, Op: op, Message: "the host returned no handle"}
	}
	return int32(r), nil
}

func spaceGet(space, key string) (int32, error) {
	sp, sn := str(space)
	kp, kn := str(key)
	return handle("space_get", nubeSpaceGet(sp, sn, kp, kn))
}

func spacePut(space, key string, val []byte) error {
	sp, sn := str(space)
	kp, kn := str(key)
	vp, vn := slice(val)
	if r := nubeSpacePut(sp, sn, kp, kn, vp, vn); r < 0 {
		return hostError("space_put", int64(r))
	}
	return nil
}

func spaceDelete(space, key string) error {
	sp, sn := str(space)
	kp, kn := str(key)
	if r := nubeSpaceDelete(sp, sn, kp, kn); r < 0 {
		return hostError("space_delete", int64(r))
	}
	return nil
}

func spaceList(space, prefix string) (int32, error) {
	sp, sn := str(space)
	pp, pn := str(prefix)
	return handle("space_list", nubeSpaceList(sp, sn, pp, pn))
}

func open(path string) (int32, error) {
	pp, pn := str(path)
	return handle("open", nubeOpen(pp, pn))
}

func call(ref string, in []byte) (int32, error) {
	rp, rn := str(ref)
	ip, il := slice(in)
	return handle("call", nubeCall(rp, rn, ip, il))
}

// cidMax is the most bytes a CID's text takes (HOSTAPI.md, add).
const cidMax = 128

func add(data []byte) (string, error) {
	var out [cidMax]byte
	dp, dn := slice(data)
	r := nubeAdd(dp, dn, unsafe.Pointer(&out[0]), uint32(len(out)))
	if r < 0 {
		return "", hostError("add", int64(r))
	}
	if int(r) > len(out) {
		return "", &Error{Code: CodeFailed, Op: "add", Message: "the host returned a CID longer than 128 bytes"}
	}
	return string(out[:r]), nil
}

func read(h int32, p []byte) (int, error) {
	pp, pn := slice(p)
	r := nubeRead(h, pp, pn)
	if r < 0 {
		return 0, hostError("read", r)
	}
	if r > int64(len(p)) {
		return 0, &Error{Code: CodeFailed, Op: "read", Message: "the host returned more bytes than asked for"}
	}
	return int(r), nil
}

// size returns how many bytes are left to read on h, or -1 when the host
// does not know.
func size(h int32) int64 {
	if r := nubeSize(h); r >= 0 {
		return r
	}
	return -1
}

func closeHandle(h int32) error {
	if r := nubeClose(h); r < 0 {
		return hostError("close", int64(r))
	}
	return nil
}

func hostLog(line string) {
	lp, ln := str(line)
	nubeLog(lp, ln)
}
