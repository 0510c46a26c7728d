package remote

// SetCreditWaitHook makes every streaming callee call f(true) when flow
// control starts holding it back and f(false) when it lets go, until
// restore is called. For tests only.
func SetCreditWaitHook(f func(waiting bool)) (restore func()) {
	creditWaitHook.Store(&f)
	return func() { creditWaitHook.Store(nil) }
}
