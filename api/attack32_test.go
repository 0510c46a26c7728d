package api_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	bsrv "github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
)

// TestGatewayMalformedHAMTIsNot500: a stranger's HAMT-sharded directory
// whose links are not shard links (a link with no name, one shorter than
// the two hex digits of the padding) makes the gateway answer 500 for its
// listing, its tar, its CAR and any path inside it: boxo's "invalid link
// name" and "corrupt bitfield" errors are not mapped to a 4xx. Anyone can
// publish such a node; 5xx means the gateway's fault.
func TestGatewayMalformedHAMTIsNot500(t *testing.T) {
	c, s, tok := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := &client.Client{URL: s.URL(), Token: tok}
	d := nubetest.NewDAG(t)
	file := d.File("hello")
	if _, err := cl.DagImport(ctx, bytes.NewReader(d.CAR(file)), "", true); err != nil {
		t.Fatal(err)
	}
	bad := malformedHAMT(t, file)
	car := carOfNodes(t, bad, file)
	if _, err := cl.DagImport(ctx, bytes.NewReader(car), "", true); err != nil {
		t.Fatal(err)
	}
	// The API's ls calls it what it is: bad data (400), not a failed fetch.
	if _, err := cl.Ls(ctx, bad.Cid().String()); !errors.Is(err, content.ErrMalformed) {
		t.Errorf("ls: %v, want an error of ErrMalformed's kind", err)
	}
	gw := listenGateway(t, c.Node(0), api.GatewayConfig{FetchTimeout: 200 * time.Millisecond})
	for _, p := range []string{"", "/", "?format=tar", "?format=car", "?format=dag-json", "/ok", "/ok?format=raw"} {
		code, _, body := do(t, nil, mustRequest(t, gw.URL()+"/ipfs/"+bad.Cid().String()+p))
		if code >= 500 && code != 503 && code != 504 {
			t.Errorf("%s: %d %.200q", p, code, body)
		}
	}
}

// malformedHAMT is a HAMT shard node (fanout 256, murmur3) with one bit
// set, whose links to file are bad shard links: one with no name, one
// shorter than the two hex digits of the padding.
func malformedHAMT(t testing.TB, file ipld.Node) ipld.Node {
	t.Helper()
	ds := mdag.NewDAGService(bsrv.New(blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())), nil))
	sh, err := hamt.NewShard(ds, 256)
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Set(context.Background(), "ok", file); err != nil {
		t.Fatal(err)
	}
	good, err := sh.Node()
	if err != nil {
		t.Fatal(err)
	}
	bad := mdag.NodeWithData(good.(*mdag.ProtoNode).Data())
	bad.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256})
	bad.AddRawLink("", &ipld.Link{Cid: file.Cid()})
	bad.AddRawLink("A", &ipld.Link{Cid: file.Cid()})
	return bad
}

// carOfNodes is a CARv1 of nodes, rooted at the first.
func carOfNodes(t testing.TB, nodes ...ipld.Node) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, []cid.Cid{nodes[0].Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := w.Put(context.Background(), n.Cid().KeyString(), n.RawData()); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
