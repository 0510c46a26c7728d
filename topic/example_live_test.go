package topic_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/topic"
)

// A live topic on one node: create it, subscribe, publish, read.
func Example_live() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nubetest.TestConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	events, err := node.Topics().Create(ctx, "events", topic.Options{})
	if err != nil {
		log.Fatal(err)
	}
	sub, err := events.Subscribe(ctx, topic.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	if _, err := events.Publish(ctx, []byte("door opened"), topic.PublishOptions{}); err != nil {
		log.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(m.Data))
	// Output: door opened
}
