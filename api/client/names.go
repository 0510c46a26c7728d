package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// IPNSRecordType is the media type of a raw IPNS record, as the gateway
// and `routing get` serve it.
const IPNSRecordType = "application/vnd.ipfs.ipns-record"

// maxRecord bounds a record read from the daemon: the IPNS spec's 10 KiB.
const maxRecord = 10 << 10

// NamePublishRequest asks to point a key's name at a path. Durations are
// Go's ("48h", "5m"); empty means the default.
type NamePublishRequest struct {
	Key      string `json:"key,omitempty"` // empty: the user key ("self")
	Value    string `json:"value"`         // a CID, /ipfs/… or /ipns/…
	Lifetime string `json:"lifetime,omitempty"`
	TTL      string `json:"ttl,omitempty"`
}

// NamePublished is a record the node signed and stored.
type NamePublished struct {
	Name     string `json:"name"` // the IPNS name (k51…)
	Value    string `json:"value"`
	Sequence uint64 `json:"sequence"`
	Validity string `json:"validity"` // RFC 3339: the end of its validity
	TTL      string `json:"ttl"`
}

// NameResolved is where a name led.
type NameResolved struct {
	Path string `json:"path"`
	TTL  string `json:"ttl"`
}

// Key is a key names are published under.
type Key struct {
	Name string `json:"name"`
	ID   string `json:"id"` // its IPNS name
}

// KeyRequest names a key.
type KeyRequest struct {
	Name string `json:"name"`
}

// NamePublish points a key's name at a path (Names().Publish).
func (c *Client) NamePublish(ctx context.Context, req NamePublishRequest) (NamePublished, error) {
	var out NamePublished
	return out, c.Call(ctx, http.MethodPost, "/api/v0/name/publish", req, &out)
}

// NameResolve follows an IPNS name or a DNSLink domain to an /ipfs/ path.
func (c *Client) NameResolve(ctx context.Context, name string) (NameResolved, error) {
	var out NameResolved
	return out, c.Call(ctx, http.MethodGet, "/api/v0/name/resolve?name="+url.QueryEscape(name), nil, &out)
}

// KeyGen makes an ed25519 key called name.
func (c *Client) KeyGen(ctx context.Context, name string) (Key, error) {
	var out Key
	return out, c.Call(ctx, http.MethodPost, "/api/v0/key/gen", KeyRequest{Name: name}, &out)
}

// KeyList lists the keys, "self" (the user key) first.
func (c *Client) KeyList(ctx context.Context) ([]Key, error) {
	var out []Key
	return out, c.Call(ctx, http.MethodGet, "/api/v0/key/list", nil, &out)
}

// KeyRemove deletes the key name.
func (c *Client) KeyRemove(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/key/remove", KeyRequest{Name: name}, nil)
}

// RoutingGet returns the raw record stored under key (/ipns/NAME).
func (c *Client) RoutingGet(ctx context.Context, key string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/api/v0/routing/get?key="+url.QueryEscape(key), "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRecord+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecord {
		return nil, fmt.Errorf("routing get %s: the record is over %d bytes", key, maxRecord)
	}
	return b, nil
}

// RoutingPut stores a raw record under key (/ipns/NAME), once it
// validates.
func (c *Client) RoutingPut(ctx context.Context, key string, record []byte) error {
	return c.send(ctx, http.MethodPost, "/api/v0/routing/put?key="+url.QueryEscape(key), IPNSRecordType, bytes.NewReader(record), nil)
}

// SpacePublishRequest asks to publish a space as a site.
type SpacePublishRequest struct {
	Space string `json:"space"`
	Key   string `json:"key,omitempty"` // empty: the user key ("self")
}

// SitePublished is a space's snapshot and the name pointed at it.
type SitePublished struct {
	Space string `json:"space"`
	Root  string `json:"root"`
	NamePublished
}

// SpacePublish publishes the space as a site: a UnixFS snapshot of its
// keys and values, which key's name points at, made again after each
// change while the node runs (Names().PublishSpace).
func (c *Client) SpacePublish(ctx context.Context, space, key string) (SitePublished, error) {
	var out SitePublished
	return out, c.Call(ctx, http.MethodPost, "/api/v0/space/publish", SpacePublishRequest{Space: space, Key: key}, &out)
}
