package cache

// SetFillHook makes c call f between each load from its source and
// keeping what it loaded: a test's place to race an invalidation.
func SetFillHook(c *Cache, f func(key string)) {
	c.mu.Lock()
	c.fillHook = f
	c.mu.Unlock()
}
