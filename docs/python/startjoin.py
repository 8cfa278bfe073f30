"""Start+join latency of a no-op child with Python's multiprocessing, per
start method: the yardstick for package process (lesson 1).

    python3 docs/python/startjoin.py
"""
import multiprocessing as mp, time, statistics
def noop(): pass
if __name__ == '__main__':
    for method in ("fork", "forkserver", "spawn"):
        ctx = mp.get_context(method)
        ds = []
        for _ in range(100 if method == "fork" else 30):
            t = time.perf_counter(); p = ctx.Process(target=noop); p.start(); p.join(); ds.append((time.perf_counter() - t) * 1e6)
        ds.sort()
        print(method, "n=%d p50 %.0f us p99 %.0f us" % (len(ds), ds[len(ds)//2], ds[int(0.99*len(ds))-1]))
