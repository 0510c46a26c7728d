package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// CacheStats is what one cache holds and did on the node (package
// cache's Stats).
type CacheStats struct {
	Name          string    `json:"name"`
	Entries       int       `json:"entries"`
	Bytes         int64     `json:"bytes"`
	MaxBytes      int64     `json:"max_bytes"`
	Peers         []string  `json:"peers"`
	Version       uint64    `json:"version"`
	Confirmed     time.Time `json:"confirmed"`
	Bound         string    `json:"bound"`
	Strict        bool      `json:"strict"`
	Hits          uint64    `json:"hits"`
	RemoteHits    uint64    `json:"remote_hits"`
	Misses        uint64    `json:"misses"`
	Loads         uint64    `json:"loads"`
	Invalidations uint64    `json:"invalidations"`
	Evictions     uint64    `json:"evictions"`
	StaleFills    uint64    `json:"stale_fills"`
}

// CacheRef names a cache.
type CacheRef struct {
	Name string `json:"name"`
}

// CachesList lists the caches open on the node.
func (c *Client) CachesList(ctx context.Context) ([]CacheStats, error) {
	var out []CacheStats
	return out, c.Call(ctx, http.MethodGet, "/api/v0/cache/list", nil, &out)
}

// CacheStats returns the stats of the cache name.
func (c *Client) CacheStats(ctx context.Context, name string) (CacheStats, error) {
	var out CacheStats
	return out, c.Call(ctx, http.MethodGet, "/api/v0/cache/stats?"+url.Values{"name": {name}}.Encode(), nil, &out)
}

// CacheDrop closes the cache name on the node and drops its entries.
func (c *Client) CacheDrop(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/cache/drop", CacheRef{Name: name}, nil)
}

// CacheGet reads key of space through the node's cache of the space.
func (c *Client) CacheGet(ctx context.Context, space, key string) (*Download, error) {
	q := url.Values{"space": {space}, "key": {key}}
	resp, err := c.do(ctx, http.MethodGet, "/api/v0/cache/get?"+q.Encode(), "", nil)
	if err != nil {
		return nil, err
	}
	d := &Download{ReadCloser: resp.Body, Size: -1}
	if n, err := strconv.ParseInt(resp.Header.Get(HeaderSize), 10, 64); err == nil {
		d.Size = n
	}
	return d, nil
}
