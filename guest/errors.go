package guest

// The error codes of nube_v1 (HOSTAPI.md, "Error codes"). A host function
// returns one of them, negated, when it fails.
const (
	CodeDenied      = -1 // E_DENIED: the run's capability does not allow this
	CodeNotFound    = -2 // E_NOT_FOUND: no such CID, path, key or service
	CodeInvalid     = -3 // E_INVALID: a malformed argument
	CodeTooLarge    = -4 // E_TOO_LARGE: over a size limit
	CodeBadHandle   = -5 // E_BAD_HANDLE: no such open handle
	CodeLimit       = -6 // E_LIMIT: the run's budget is spent
	CodeUnavailable = -7 // E_UNAVAILABLE: the data or its node could not be reached
	CodeFailed      = -8 // E_FAILED: anything else
)

// Sentinels for errors.Is: errors.Is(err, guest.ErrDenied) reports whether
// the host refused err's call for want of a grant, whatever its message.
var (
	ErrDenied      = &Error{Code: CodeDenied}
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrInvalid     = &Error{Code: CodeInvalid}
	ErrTooLarge    = &Error{Code: CodeTooLarge}
	ErrBadHandle   = &Error{Code: CodeBadHandle}
	ErrLimit       = &Error{Code: CodeLimit}
	ErrUnavailable = &Error{Code: CodeUnavailable}
	// ErrFailed also matches codes newer than this package knows: HOSTAPI.md
	// says a module should treat an unknown negative code as E_FAILED.
	ErrFailed = &Error{Code: CodeFailed}
)

var codeNames = map[int]string{
	CodeDenied:      "denied",
	CodeNotFound:    "not found",
	CodeInvalid:     "invalid argument",
	CodeTooLarge:    "too large",
	CodeBadHandle:   "bad handle",
	CodeLimit:       "limit reached",
	CodeUnavailable: "unavailable",
	CodeFailed:      "failed",
}

// Error is a failed call to the host: Code is the negative code the host
// function returned, Op the nube_v1 function ("space_get"), and Message
// the host's text for it (from error_message).
type Error struct {
	Code    int
	Op      string
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = codeNames[e.known()]
	}
	if e.Op == "" {
		return msg
	}
	return e.Op + ": " + msg
}

// Is makes errors.Is(err, ErrDenied) and the like true when err has that
// code. An unknown code is E_FAILED.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.known() == e.known()
}

// known returns e's code, or CodeFailed for a code this package does not
// know.
func (e *Error) known() int {
	if _, ok := codeNames[e.Code]; ok {
		return e.Code
	}
	return CodeFailed
}
