package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ipfs/boxo/gateway"
	"github.com/ipfs/boxo/namesys"
	ipath "github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/routing"
)

// nameMissing reports a failed resolution that means the name has no
// record (or the domain no DNSLink), rather than a fault of the gateway.
func nameMissing(err error) bool {
	var dnsErr *net.DNSError
	return errors.Is(err, routing.ErrNotFound) || errors.Is(err, namesys.ErrResolveFailed) ||
		errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// notFound makes a failed name lookup a 404, as a missing file is: boxo
// answers 500, the gateway's fault.
func notFound(err error) error {
	var coded *gateway.ErrorStatusCode
	if err == nil || errors.As(err, &coded) || !nameMissing(err) {
		return err
	}
	return gateway.NewErrorStatusCode(fmt.Errorf("no such name: %w", err), http.StatusNotFound)
}

func (b filesBackend) ResolveMutable(ctx context.Context, p ipath.Path) (ipath.ImmutablePath, time.Duration, time.Time, error) {
	ip, ttl, mod, err := b.BlocksBackend.ResolveMutable(ctx, p)
	return ip, ttl, mod, notFound(err)
}

func (b filesBackend) GetIPNSRecord(ctx context.Context, c cid.Cid) ([]byte, error) {
	rec, err := b.BlocksBackend.GetIPNSRecord(ctx, c)
	return rec, notFound(err)
}
