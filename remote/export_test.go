package remote

// SetCreditWaitHook makes every streaming callee call f when flow control
// holds it back, until restore is called. For tests only.
func SetCreditWaitHook(f func()) (restore func()) {
	creditWaitHook.Store(&f)
	return func() { creditWaitHook.Store(nil) }
}
