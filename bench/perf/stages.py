#!/usr/bin/env python3
"""CPU of the order path split by stage, from `perf script` on stdin.

Each sample is given to the first stage whose pattern matches a frame of
its call chain, read from the sampled function outwards (so memcpy, malloc
or a system call count for the stage that called them); a chain no stage
names is the runtime's own (scheduling, waking, parking) or other.

    perf record -F 999 -g -p <pid> -- sleep 6
    perf script | bench/perf/stages.py
"""
import re
import sys

STAGES = [
    ("SQL (sqlx, sea-orm; SQLite itself when embedded)",
     r"sqlite3|sqlx|sea_orm|sea_query|pcache1|walChecksum|Btree|Vdbe|flume"),
    ("TLS", r"rustls|aws_lc|ring::aead|_gcm|aes_"),
    ("auth (tokens)", r"jsonwebtoken|ed25519|curve25519|shop_kit_auth|argon2"),
    ("traces, metrics, logs", r"tracing|metrics::|opentelemetry|shop_kit_observe"),
    ("events (outbox, relay, NATS)", r"shop_kit_events|async_nats"),
    ("saga and orders' own work", r"shop_orders::"),
    ("catalog, payments, users' own work", r"shop_catalog::|shop_payments::|shop_users::"),
    ("HTTP/2, gRPC, Connect and codecs",
     r"\bh2::|hyper::|hyper_util|prost|tonic|serde_json|pbjson|connectrpc|hpack|http::|"
     r"axum::|tower::|shop_kit_rpc|shop_kit_client|shop_kit_wire"),
    ("tokio (scheduling, waking, parking)", r"tokio::|parking_lot|futex|epoll"),
    # Chains cut at the C library or the kernel, by what they were doing.
    ("SQL (sqlx, sea-orm; SQLite itself when embedded)",
     r"__libc_pread|__libc_pwrite|pwrite64|pread64|fcntl|fdatasync|fsync|ext4_|"
     r"mark_buffer_dirty|filemap_|copy_folio_from_iter|generic_perform_write"),
    ("HTTP/2, gRPC, Connect and codecs", r"writev|__libc_recv|__libc_send|sendmsg|recvmsg|tcp_"),
    ("allocation and copying (caller not unwound)", r"\bmi_|_mi_|malloc|memmove|memcpy|memset"),
    ("tokio (scheduling, waking, parking)",
     r"finish_task_switch|_raw_spin_unlock|irqentry_exit|schedule|do_syscall_64|"
     r"__GI___libc_write|syscall\+"),
]
# Programs other than the shop, counted whole.
PROGRAMS = {"postgres": "PostgreSQL (every process)", "nats-server": "nats-server",
            "shop-bench": "the load generator"}
COMPILED = [(name, re.compile(pattern)) for name, pattern in STAGES]


def samples(lines):
    """(program, frames) of each sample."""
    program, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            if program is not None:
                yield program, frames
            program, frames = None, []
        elif line.startswith(("\t", " ")):
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                frames.append(parts[1])
        else:
            program = line.split()[0]
    if program is not None:
        yield program, frames


def main():
    counts = {}
    total = 0
    for program, frames in samples(sys.stdin):
        total += 1
        stage = "other"
        whole = next((name for prefix, name in PROGRAMS.items() if program.startswith(prefix)), None)
        if whole:
            counts[whole] = counts.get(whole, 0) + 1
            continue
        for frame in frames:
            hit = next((name for name, pattern in COMPILED if pattern.search(frame)), None)
            if hit:
                stage = hit
                break
        counts[stage] = counts.get(stage, 0) + 1
    print(f"{total} samples")
    for stage, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{100.0 * n / max(total, 1):5.1f}%  {stage}")


if __name__ == "__main__":
    main()
