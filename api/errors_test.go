package api

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/names"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
	"github.com/nubecloud/nube/wasm"
)

// publicDirs are the public packages whose sentinels a program may meet
// through the API, relative to this package.
var publicDirs = map[string]string{
	"nube": "..", "content": "../content", "service": "../service", "space": "../space",
	"group": "../group", "ledger": "../ledger", "remote": "../remote", "wasm": "../wasm", "topic": "../topic",
	"client": "client", "errcode": "../errcode", "job": "../job",
	"names": "../names", "cache": "../cache",
}

// sentinels are the values of the names exportedErrs finds: Go cannot
// look a variable up by its name, so the list is by hand, and
// TestSentinels fails when it misses one.
var sentinels = map[string]error{
	"nube.ErrDataDirInUse": nube.ErrDataDirInUse, "nube.ErrUnsafePermissions": nube.ErrUnsafePermissions, "nube.ErrNoUserKey": nube.ErrNoUserKey,

	"content.ErrNotPinned": content.ErrNotPinned, "content.ErrCorruptBlock": content.ErrCorruptBlock,
	"content.ErrStoreClosed": content.ErrStoreClosed, "content.ErrBadName": content.ErrBadName,
	"content.ErrBadCAR": content.ErrBadCAR, "content.ErrIncomplete": content.ErrIncomplete,
	"content.ErrBadCID": content.ErrBadCID, "content.ErrNotUnixFS": content.ErrNotUnixFS,
	"content.ErrNotFound": content.ErrNotFound, "content.ErrNoProvider": content.ErrNoProvider,
	"content.ErrMalformed": content.ErrMalformed, "content.ErrIsDir": content.ErrIsDir,

	"service.ErrNotFound": service.ErrNotFound, "service.ErrAmbiguous": service.ErrAmbiguous,
	"service.ErrBadDescriptor": service.ErrBadDescriptor, "service.ErrBadSignature": service.ErrBadSignature,
	"service.ErrNoCompute": service.ErrNoCompute, "service.ErrBusy": service.ErrBusy,
	"service.ErrModuleUnavailable": service.ErrModuleUnavailable, "service.ErrPayment": service.ErrPayment,
	"service.ErrUnsettled": service.ErrUnsettled, "service.ErrNotOffered": service.ErrNotOffered,
	"service.ErrNotAllowed": service.ErrNotAllowed, "service.ErrBadCapability": service.ErrBadCapability, "service.ErrDisagree": service.ErrDisagree,

	"space.ErrNotFound": space.ErrNotFound, "space.ErrNotAuthorised": space.ErrNotAuthorised,
	"space.ErrTooLarge": space.ErrTooLarge, "space.ErrBadName": space.ErrBadName,
	"space.ErrBadPolicy": space.ErrBadPolicy, "space.ErrBadHead": space.ErrBadHead,
	"space.ErrBadGrant": space.ErrBadGrant, "space.ErrBadChange": space.ErrBadChange,
	"space.ErrForged": space.ErrForged, "space.ErrStale": space.ErrStale,
	"space.ErrNotHome": space.ErrNotHome, "space.ErrUnavailable": space.ErrUnavailable,
	"space.ErrExists": space.ErrExists, "space.ErrHeadTooLarge": space.ErrHeadTooLarge,
	"space.ErrTooManyGrants": space.ErrTooManyGrants, "space.ErrGrantRate": space.ErrGrantRate,
	"space.ErrDecrypt": space.ErrDecrypt, "space.ErrNotOffered": space.ErrNotOffered,

	"topic.ErrNotFound": topic.ErrNotFound, "topic.ErrExists": topic.ErrExists, "topic.ErrBadName": topic.ErrBadName,
	"topic.ErrNotAuthorised": topic.ErrNotAuthorised, "topic.ErrBadMessage": topic.ErrBadMessage, "topic.ErrTooLarge": topic.ErrTooLarge,
	"topic.ErrLagged": topic.ErrLagged, "topic.ErrNotDurable": topic.ErrNotDurable, "topic.ErrUnavailable": topic.ErrUnavailable,

	"cache.ErrNotFound": cache.ErrNotFound, "cache.ErrNotAuthorised": cache.ErrNotAuthorised,
	"cache.ErrClosed": cache.ErrClosed, "cache.ErrBadRequest": cache.ErrBadRequest,

	"group.ErrNotFound": group.ErrNotFound, "group.ErrNotMember": group.ErrNotMember,
	"group.ErrBadName": group.ErrBadName, "group.ErrNoLeader": group.ErrNoLeader,
	"group.ErrMachine": group.ErrMachine, "group.ErrClosed": group.ErrClosed,
	"group.ErrMalformed": group.ErrMalformed, "group.ErrLockLost": group.ErrLockLost,
	"group.ErrLagged": group.ErrLagged,

	"ledger.ErrMalformed": ledger.ErrMalformed, "ledger.ErrTooLarge": ledger.ErrTooLarge,
	"ledger.ErrForged": ledger.ErrForged, "ledger.ErrReplay": ledger.ErrReplay,
	"ledger.ErrStale": ledger.ErrStale, "ledger.ErrInsufficient": ledger.ErrInsufficient,
	"ledger.ErrNoReserve": ledger.ErrNoReserve, "ledger.ErrNoLine": ledger.ErrNoLine,
	"ledger.ErrSettled": ledger.ErrSettled, "ledger.ErrBadReceipt": ledger.ErrBadReceipt,
	"ledger.ErrInvariant": ledger.ErrInvariant, "ledger.ErrNoLedger": ledger.ErrNoLedger,
	"ledger.ErrRefused": ledger.ErrRefused, "ledger.ErrImpostor": ledger.ErrImpostor,
	"ledger.ErrUnknownPayee": ledger.ErrUnknownPayee,

	"job.ErrNotFound": job.ErrNotFound, "job.ErrBadSpec": job.ErrBadSpec,
	"job.ErrInputNotFound": job.ErrInputNotFound, "job.ErrBudget": job.ErrBudget,
	"job.ErrTaskFailed": job.ErrTaskFailed, "job.ErrCancelled": job.ErrCancelled,
	"job.ErrBadContract": job.ErrBadContract,

	"remote.ErrCallee": remote.ErrCallee, "remote.ErrNoSuchFunction": remote.ErrNoSuchFunction,
	"remote.ErrRefused": remote.ErrRefused, "remote.ErrPanicked": remote.ErrPanicked,
	"remote.ErrUnreachable": remote.ErrUnreachable, "remote.ErrInputTooLarge": remote.ErrInputTooLarge,
	"remote.ErrBadInput": remote.ErrBadInput, "remote.ErrResultTooLarge": remote.ErrResultTooLarge,
	"remote.ErrProtocol": remote.ErrProtocol,

	"wasm.ErrCIDMismatch": wasm.ErrCIDMismatch, "wasm.ErrInvalidModule": wasm.ErrInvalidModule,
	"wasm.ErrModuleTooLarge": wasm.ErrModuleTooLarge, "wasm.ErrMemoryLimit": wasm.ErrMemoryLimit,
	"wasm.ErrTimeout": wasm.ErrTimeout, "wasm.ErrInputTooLarge": wasm.ErrInputTooLarge,
	"wasm.ErrOutputTooLarge": wasm.ErrOutputTooLarge, "wasm.ErrExit": wasm.ErrExit,
	"wasm.ErrTrap": wasm.ErrTrap, "wasm.ErrClosed": wasm.ErrClosed,

	"client.ErrNoDaemon": client.ErrNoDaemon, "client.ErrNoHandoff": client.ErrNoHandoff,
	"client.ErrBadRequest": client.ErrBadRequest, "client.ErrUnauthorized": client.ErrUnauthorized,
	"client.ErrForbidden": client.ErrForbidden, "client.ErrRefused": client.ErrRefused,
	"client.ErrNotFound": client.ErrNotFound, "client.ErrConflict": client.ErrConflict,
	"client.ErrBusy": client.ErrBusy, "client.ErrUnreachable": client.ErrUnreachable,
	"client.ErrTimeout": client.ErrTimeout,

	"names.ErrNotFound": names.ErrNotFound, "names.ErrBadName": names.ErrBadName,
	"names.ErrBadRecord": names.ErrBadRecord, "names.ErrExists": names.ErrExists,

	"errcode.ErrBadRequest": errcode.ErrBadRequest, "errcode.ErrUnauthorized": errcode.ErrUnauthorized,
	"errcode.ErrForbidden": errcode.ErrForbidden, "errcode.ErrRefused": errcode.ErrRefused,
	"errcode.ErrNotFound": errcode.ErrNotFound, "errcode.ErrConflict": errcode.ErrConflict,
	"errcode.ErrTooLarge": errcode.ErrTooLarge, "errcode.ErrBusy": errcode.ErrBusy,
	"errcode.ErrUnreachable": errcode.ErrUnreachable, "errcode.ErrTimeout": errcode.ErrTimeout,
}

// exportedErrs returns the exported package-level variables named Err…
// of the package in dir (its non-test files), as pkg.ErrName.
func exportedErrs(t *testing.T, pkg, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
						out = append(out, pkg+"."+n.Name)
					}
				}
			}
		}
	}
	return out
}

// TestSentinels walks every sentinel of every public package through a
// handler and the client: the status is its code's in the one table,
// the client's error has the code, and errors.Is finds the sentinel in it
// (but for internal errors, whose answer does not say which one it was).
// Every sentinel must be in sentinels and in ARCHITECTURE.md's table,
// under its code, so a new one cannot be added without a code and a row.
func TestSentinels(t *testing.T) {
	var found []string
	for pkg, dir := range publicDirs {
		found = append(found, exportedErrs(t, pkg, dir)...)
	}
	for _, name := range found {
		if _, ok := sentinels[name]; !ok {
			t.Errorf("%s is not in this test's sentinels, nor so checked against the API's table", name)
		}
	}
	for name := range sentinels {
		if !slices.Contains(found, name) {
			t.Errorf("%s is in sentinels but in no public package", name)
		}
	}
	rows := archTable(t)
	var err error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codedError(w, fmt.Errorf("handler: %w", err))
	}))
	t.Cleanup(srv.Close)
	c := &client.Client{URL: srv.URL}
	for name, s := range sentinels {
		err = s
		code := errcode.Of(s)
		if !strings.Contains(rows[code], "`"+name+"`") {
			t.Errorf("%s (%s) is not in ARCHITECTURE.md's row for %s", name, s, code)
		}
		got := c.Call(context.Background(), http.MethodGet, "/", nil, nil)
		var ce *client.Error
		if !errors.As(got, &ce) {
			t.Fatalf("%s: the client got %v, not a *client.Error", name, got)
		}
		if ce.Status != client.StatusOf(string(code)) || ce.Code != string(code) {
			t.Errorf("%s: the client got %d %s, want %d %s", name, ce.Status, ce.Code, client.StatusOf(string(code)), code)
		}
		if code != errcode.Internal && !errors.Is(got, s) {
			t.Errorf("%s: errors.Is does not find it in the client's error %q", name, got)
		}
	}
}

// TestBusyRetryAfter: a busy answer is 503 and says when to try again.
func TestBusyRetryAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	codedError(rec, fmt.Errorf("call: %w", service.ErrBusy))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("busy answered %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	rec = httptest.NewRecorder()
	codedError(rec, space.ErrNotAuthorised)
	if rec.Code != http.StatusForbidden || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("not authorised answered %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// TestStatusTable: each code has one status, and the client reads each
// status back into a code of that status.
func TestStatusTable(t *testing.T) {
	codes := []errcode.Code{errcode.BadRequest, errcode.Unauthorized, errcode.Forbidden, errcode.Refused,
		errcode.NotFound, errcode.Conflict, errcode.TooLarge, errcode.Busy, errcode.Unreachable,
		errcode.Timeout, errcode.Internal}
	for _, code := range codes {
		st := client.StatusOf(string(code))
		if back := client.StatusOf(client.CodeOf(st)); back != st {
			t.Errorf("%s is %d, which the client reads as %s (%d)", code, st, client.CodeOf(st), back)
		}
	}
	if client.StatusOf("no such code") != http.StatusInternalServerError {
		t.Error("an unknown code is not 500")
	}
}

// archTable reads ARCHITECTURE.md's table of codes: the text of each
// code's row, by the code in its first cell. It checks each row's status
// against the one table.
func archTable(t *testing.T) map[errcode.Code]string {
	t.Helper()
	b, err := os.ReadFile("../ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[errcode.Code]string{}
	for _, ln := range strings.Split(string(b), "\n") {
		cells := strings.Split(ln, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		code := errcode.Code(strings.Trim(strings.TrimSpace(cells[1]), "`"))
		var status int
		if _, err := fmt.Sscan(strings.TrimSpace(cells[2]), &status); err != nil {
			continue
		}
		if want := client.StatusOf(string(code)); status != want {
			t.Errorf("ARCHITECTURE.md says %s is %d; the API answers %d", code, status, want)
		}
		rows[code] = ln
	}
	if len(rows) == 0 {
		t.Fatal("ARCHITECTURE.md has no table of error codes")
	}
	return rows
}
