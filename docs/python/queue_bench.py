"""Python's multiprocessing.Queue beside bench queue and bench pingpong:
1 producer and 1 consumer process moving 64-byte messages, then one
message there and back. Run: python3 docs/python/queue_bench.py"""
import multiprocessing as mp
import time

N = 200_000
SIZE = 64

def producer(q, n):
    msg = bytes(SIZE)
    for _ in range(n):
        q.put(msg)
    q.put(None)

def consumer(q, done):
    got = 0
    while q.get() is not None:
        got += 1
    done.put(got)

def echo(ping, pong, n):
    for _ in range(n):
        pong.put(ping.get())

if __name__ == '__main__':
    q, done = mp.Queue(maxsize=1024), mp.Queue()
    c = mp.Process(target=consumer, args=(q, done))
    p = mp.Process(target=producer, args=(q, N))
    c.start()
    t0 = time.perf_counter()
    p.start()
    got = done.get()
    secs = time.perf_counter() - t0
    p.join()
    c.join()
    print(f"multiprocessing.Queue 1x1 {SIZE}-byte messages: {got} in {secs:.2f} s, {got / secs:,.0f} msgs/s")

    ping, pong = mp.Queue(), mp.Queue()
    warm, n = 1000, 20000
    e = mp.Process(target=echo, args=(ping, pong, warm + n))
    e.start()
    msg, rtt = bytes(SIZE), []
    for i in range(warm + n):
        t = time.perf_counter()
        ping.put(msg)
        pong.get()
        if i >= warm:
            rtt.append((time.perf_counter() - t) * 1e6)
    e.join()
    rtt.sort()
    print(f"multiprocessing.Queue ping-pong: p50 {rtt[len(rtt) // 2]:.1f} µs, p99 {rtt[int(len(rtt) * 0.99)]:.1f} µs")
