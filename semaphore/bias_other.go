//go:build linux && !amd64

package semaphore

// biasSupported: on weaker memory models (arm64) the holder's plain stores
// could pass each other and its critical section's loads could pass the
// bias load; that needs a store-release and a load-acquire, which nothing
// here could test. A BiasedMutex there never biases and is a Mutex for one
// goroutine at a time.
const biasSupported = false
