// Package process is Python's multiprocessing.Process for Go: start a
// function in a child process, join it, ask whether it is alive, terminate
// or kill it, read its exit code, and have daemon children die with their
// parent.
//
// # Basics
//
// Go cannot fork a running runtime (its threads would not survive the
// fork), so a child is the program itself, re-executed from /proc/self/exe
// with the name of a registered entry, the way Python's "spawn" start
// method works. Entries are registered at init time and main runs through
// Main:
//
//	func init() {
//		process.Register("worker", func(args []string) error { ... })
//	}
//
//	func main() {
//		process.Main(func() error {
//			p := &process.Process{Entry: "worker", Args: []string{"7"}}
//			if err := p.Start(); err != nil {
//				return err
//			}
//			return p.Join(context.Background())
//		})
//	}
//
// Like Python's spawn, the child starts from scratch: package variables
// have their initial values, and a change in the child is not seen by the
// parent. Share state through package shm instead.
//
// Python → process: Process(target=f, args=a, name=n, daemon=d) →
// &Process{Entry: "f", Args: a, Name: n, Daemon: d}; start() → Start;
// join(timeout) → Join(ctx); is_alive() → IsAlive; terminate() → Terminate
// (SIGTERM); kill() → Kill (SIGKILL); interrupt() → Interrupt (SIGINT);
// exitcode → ExitCode (-15, -9 for signals, as Python); pid → Pid;
// repr(p) → String ("<Process name='Process-1' pid=4101 parent=4100
// stopped exitcode=-SIGTERM>", Python 3.12's words); current_process() →
// Current; parent_process() → Parent (nil in the main program; Join waits
// for the parent's death); active_children() → ActiveChildren;
// set_start_method("forkserver") → KeepWarm (children started ahead of
// need, handed their entry at Start).
//
// The package was internal/forkexec; it is public so that programs outside
// this module can start worker processes the way the lessons do.
//
// # Daemons, zombies and orphans
//
// Every child is reaped by a goroutine as soon as it exits: no zombie is
// left while the parent runs. When run returns, Main does what Python does
// at interpreter exit: SIGTERM to daemon children (SIGKILL after 2 s), then
// it waits for the others.
//
// A daemon child also dies if its parent is killed, however it dies: it is
// started with Pdeathsig (SIGKILL), from one goroutine locked to an OS
// thread that lives as long as the process (Pdeathsig fires when the thread
// that forked the child exits, Go issue 27505), and it checks at start that
// its parent is still the one that started it. A daemon may not start
// children (ErrDaemonChildren).
//
// A non-daemon child whose parent is SIGKILLed lives on as an orphan: the
// kernel reparents it to init (or to the nearest subreaper), which reaps it
// when it exits. A program that wants to keep its grandchildren can call
// SetSubreaper and reap them with ReapOrphan.
//
// # Caveats
//
// Linux only. Main must wrap main: Start refuses (ErrNoMain) otherwise, and
// a child started with an unknown entry name exits with status 2 instead of
// running main again, so a mistake cannot become a fork bomb. Entries get
// strings, not Go values; pass more through a file or a shm segment.
//
// A child gets this process's environment. Under the race detector (a
// -race build, whose children are -race builds too) its GORACE also gets
// atexit_sleep_ms=0 unless GORACE sets that option: the race runtime
// otherwise sleeps a second as each child exits, and every Join waits
// for it. A child reports its races as it finds them all the same.
//
// In tests, wrap the test binary's TestMain in Main, as for a program:
//
//	func TestMain(m *testing.M) { process.Main(func() error { return process.Exit(m.Run()) }) }
package process
