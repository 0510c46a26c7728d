package ledger_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nubecloud/nube/nubetest"
)

// TestMain fails the package's tests if any goroutine a node or a test
// started is left running at the end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, nubetest.LeakOptions()...) }
