package cache_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nubecloud/nube/nubetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, nubetest.LeakOptions()...)
}
