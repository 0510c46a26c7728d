package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/browsertest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// topicsFromPage checks the Topics panel of node 0 of c: a durable topic
// made through the library shows its offsets and its consumer's lag; a
// topic made through the page appears, takes a message published from
// the page, and its published count shows it. It needs the topic layer
// built (live.go and durable.go).
func topicsFromPage(t *testing.T, ctx, bctx context.Context, c *nubetest.C, cl *client.Client) {
	t.Helper()
	set := func(id, value string) {
		t.Helper()
		browsertest.JS[chromedp.Void](t, bctx, fmt.Sprintf(`document.getElementById(%q).value = %q`, id, value))
	}
	submit := func(id, out, want string) {
		t.Helper()
		browsertest.JS[chromedp.Void](t, bctx, fmt.Sprintf(`document.getElementById(%q).textContent = ""`, out))
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID(id))); err != nil {
			t.Fatalf("click %s: %v", id, err)
		}
		browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`((o) => o.textContent.includes(%q) || o.className === "err")(document.getElementById(%q))`, want, out),
			fmt.Sprintf("#%s never said %q", out, want))
		if got := browsertest.JS[string](t, bctx, fmt.Sprintf(`document.getElementById(%q).textContent`, out)); !strings.Contains(got, want) {
			t.Fatalf("#%s says %q, want %q", out, got, want)
		}
	}

	// A durable topic held by nodes 0 and 1, three messages, a consumer
	// that acked the first.
	tp, err := c.Node(0).Topics().Create(ctx, "orders", topic.Options{Retain: topic.Retention{Count: 100}, Placement: space.Policy{On: []peer.ID{c.Node(1).ID()}}})
	if err != nil {
		t.Fatal(err)
	}
	var first uint64
	for i := range 3 {
		ack, err := tp.Publish(ctx, []byte(fmt.Sprintf("order %d", i)), topic.PublishOptions{})
		if err != nil {
			t.Fatalf("publish on a durable topic: %v", err)
		}
		if i == 0 {
			first = ack.Offset
		}
	}
	sub, err := tp.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(first), Consumer: "audit"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err == nil {
		err = m.Ack(ctx)
	}
	sub.Close()
	if err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`document.querySelector('#topic-table tr[data-topic=%q]')`, tp.ID())
	browsertest.Wait(t, ctx, bctx, "!!"+row, "the durable topic never appeared in the Topics panel")
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`((r) => r && r.textContent.includes("audit: lag 2") && r.textContent.includes(%q))(%s)`,
		fmt.Sprintf("%d–%d", first, first+2), row), "the Topics panel never showed the offsets and the consumer's lag")

	// A live topic made on the page; a message published from it.
	set("topic-name", "bulletins")
	submit("topic-btn", "topic-result", "Created bulletins, live")
	id := browsertest.JS[string](t, bctx, `document.getElementById("topic-result").dataset.topic`)
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`!!document.querySelector('#topic-table tr[data-topic=%q]')`, id), "the new topic never appeared in the Topics panel")
	set("topic-name", "bad")
	set("topic-retain", "forever")
	submit("topic-btn", "topic-result", "keeps \"forever\"?")
	set("topic-retain", "")
	browsertest.Wait(t, ctx, bctx, `[...document.getElementById("pub-topic").options].some((o) => o.value === "orders")`, "the topic was never offered to publish on")
	set("pub-topic", "orders")
	set("pub-message", "from the page")
	submit("pub-btn", "pub-result", "Published on orders at offset ")
	info, err := cl.TopicInfo(ctx, "orders")
	if err != nil || info.Next != first+4 {
		t.Fatalf("topic info after publishing from the page: %+v, %v", info, err)
	}
	if list, err := cl.TopicsList(ctx); err != nil || !slices.ContainsFunc(list, func(s client.TopicSummary) bool { return s.ID == id && !s.Durable }) {
		t.Fatalf("topic list after creating one on the page: %+v, %v", list, err)
	}
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`((r) => r && /^[1-9]/.test(r.cells[2].textContent))(%s)`, row), "the Topics panel never counted a publish")
}
