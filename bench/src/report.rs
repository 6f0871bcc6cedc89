//! The results as JSON (everything, every sample) and as Markdown tables
//! (printed, and written to docs/benchmarks.md).

use std::fmt::Write;

use serde::Serialize;

use crate::{
    app_suite::AppResults, machine::Machine, protocol_suite::Row, targets::Shape,
    tls_suite::TlsResults,
};

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub command: String,
    pub protocol: Vec<Row>,
    pub app: Option<AppResults>,
    pub tls: Option<TlsResults>,
}

impl Report {
    pub fn new(machine: Machine, args: Vec<String>) -> Self {
        let command = std::iter::once("shop-bench".to_owned())
            .chain(args.into_iter().skip(1))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            machine,
            command,
            protocol: Vec::new(),
            app: None,
            tls: None,
        }
    }

    /// The whole report, for docs/benchmarks.md.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "The latest `just bench` run. Regenerate with `just bench` (it rewrites this file).\n"
        );
        let _ = writeln!(out, "- Command: `{}` (via `just bench`)", self.command);
        let _ = writeln!(out, "- Date: {}, commit {}", m.date, m.commit);
        let _ = writeln!(
            out,
            "- Machine: {}, {} cores, {} GiB, Linux {}; {}",
            m.cpu, m.cores, m.memory_gib, m.kernel, m.pinning
        );
        let tools: Vec<String> = m
            .tools
            .iter()
            .map(|(name, v)| format!("{name}: {v}"))
            .collect();
        let _ = writeln!(out, "- Tools: {}\n", tools.join("; "));
        out.push_str(&self.protocol_markdown());
        out.push_str(&self.app_markdown());
        out.push_str(&self.tls_markdown());
        out
    }

    /// The TLS suite: TLS beside h2c, and a new connection's cost.
    pub fn tls_markdown(&self) -> String {
        let mut out = String::new();
        let Some(tls) = &self.tls else {
            return out;
        };
        let _ = writeln!(
            out,
            "## TLS suite
"
        );
        let _ = writeln!(
            out,
            "The unary echo over TLS (rustls on ring, ALPN h2, h2load) beside the same server \
             over h2c; tonic with its own TLS as the peer. \"× h2c\" is TLS req/s over h2c \
             req/s on the same server.\n"
        );
        let _ = writeln!(
            out,
            "| server | protocol | transport | req/s | × h2c | p50 µs | p99 µs |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|");
        for row in &tls.throughput {
            let plain = tls
                .throughput
                .iter()
                .find(|r| r.stack == row.stack && r.protocol == row.protocol && !r.tls);
            let ratio = plain.map_or("–".to_owned(), |p| {
                format!(
                    "{:.2}",
                    row.medians.requests_per_sec / p.medians.requests_per_sec
                )
            });
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} ± {:.0}% | {ratio} | {:.0} | {:.0} |",
                row.stack.name(),
                row.protocol.name(),
                if row.tls { "TLS" } else { "h2c" },
                row.medians.requests_per_sec,
                row.medians.spread_percent,
                row.medians.p50_us,
                row.medians.p99_us,
            );
        }
        let _ = writeln!(
            out,
            "\nA new connection, then one gRPC call on it, {} times one after the other: the \
             client's median time, and the server's CPU time per connection (/proc). TLS minus \
             h2c is what the handshake costs.\n",
            tls.connections.first().map_or(0, |c| c.connections)
        );
        let _ = writeln!(
            out,
            "| server | transport | p50 µs | server CPU µs | handshake µs (p50) | handshake CPU µs |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
        for row in &tls.connections {
            let plain = tls
                .connections
                .iter()
                .find(|r| r.stack == row.stack && !r.tls);
            let extra = |f: fn(&crate::tls_suite::ConnectionRow) -> f64| match (row.tls, plain) {
                (true, Some(p)) => format!("{:.0}", f(row) - f(p)),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {} | {} |",
                row.stack.name(),
                if row.tls { "TLS" } else { "h2c" },
                row.p50_us,
                row.server_cpu_us,
                extra(|r| r.p50_us),
                extra(|r| r.server_cpu_us),
            );
        }
        out.push('\n');
        out
    }

    pub fn protocol_markdown(&self) -> String {
        let mut out = String::new();
        if self.protocol.is_empty() {
            return out;
        }
        let _ = writeln!(out, "## Protocol suite\n");
        let _ = writeln!(
            out,
            "h2load, one request in flight per connection (concurrency = connections). req/s is \
             the median of the repetitions, ± their spread ((max - min) / median); p50/p99 are \
             medians of each run's percentiles. \"× limit\" compares with bare axum doing the \
             same encoding (Connect JSON, GET, or proto for proto, gRPC and gRPC-Web): above 1 \
             is more req/s, below 1 is lower latency. services/kit runs as it ships: every \
             feature on and 1% of its calls traced, their spans exported to a collector in the \
             harness that forgets them (`OTEL_TRACES_SAMPLER=always_off just bench` for none).\n"
        );
        let mut concurrencies: Vec<u32> = self.protocol.iter().map(|r| r.concurrency).collect();
        concurrencies.sort_unstable();
        concurrencies.dedup();
        for shape in Shape::ALL {
            for &concurrency in &concurrencies {
                let rows: Vec<&Row> = self
                    .protocol
                    .iter()
                    .filter(|r| r.shape == shape && r.concurrency == concurrency)
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "### {}, concurrency {concurrency}\n", shape.name());
                let _ = writeln!(
                    out,
                    "| server | protocol | req/s | × limit | p50 µs | × limit | p99 µs | × limit |"
                );
                let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
                for row in rows {
                    let ratio =
                        |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{v:.2}"));
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.0} ± {:.0}% | {} | {:.0} | {} | {:.0} | {} |",
                        row.stack.name(),
                        row.protocol.name(),
                        row.medians.requests_per_sec,
                        row.medians.spread_percent,
                        ratio(row.vs_limit.map(|r| r.requests_per_sec)),
                        row.medians.p50_us,
                        ratio(row.vs_limit.map(|r| r.p50)),
                        row.medians.p99_us,
                        ratio(row.vs_limit.map(|r| r.p99)),
                    );
                }
                out.push('\n');
            }
        }
        out
    }

    pub fn app_markdown(&self) -> String {
        let mut out = String::new();
        let Some(app) = &self.app else {
            return out;
        };
        let _ = writeln!(out, "## App suite (the launched shop)\n");
        let _ = writeln!(
            out,
            "Start-up, `shop` (every service in one process) on fresh SQLite files, migrations and \
             demo data included, from spawn to every `/readyz` answering 200: **{:.0} ms** \
             (median; runs {}). Idle, that one process holds {}.\n",
            app.startup.median_ms,
            app.startup
                .ready_ms
                .iter()
                .map(|ms| format!("{ms:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            app.startup.idle
        );
        for database in &app.databases {
            let _ = writeln!(out, "### On {}, a process per service\n", database.database);
            let _ = writeln!(
                out,
                "Orders end to end: a customer per connection places an order (CreateOrder over \
                 gRPC) and follows it with WatchOrder until CONFIRMED: stock reserved, card \
                 charged, stock committed, each step persisted, across three services.\n"
            );
            let _ = writeln!(
                out,
                "| concurrency | orders/s | p50 ms | p99 ms | confirmed | cancelled | CPU ms per order | SQL statements per order |"
            );
            let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---|---|");
            for row in &database.orders {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} ± {:.0}% | {:.1} | {:.1} | {} | {} | {} | {} |",
                    row.concurrency,
                    row.orders_per_sec,
                    row.spread_percent,
                    row.p50_ms,
                    row.p99_ms,
                    row.confirmed,
                    row.cancelled,
                    crate::app_suite::cpu_per_order(&row.cpu_ms_per_order),
                    crate::app_suite::statements_per_order_text(&row.statements_per_order)
                );
            }
            let _ = writeln!(
                out,
                "\nConnect GET calls (signed in): the BFF's GetHome and the three calls it fans \
                 out to, then the catalog's first page as anyone browsing sees it.\n"
            );
            let _ = writeln!(out, "| call | concurrency | req/s | p50 µs | p99 µs |");
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            for row in &database.calls {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} ± {:.0}% | {:.0} | {:.0} |",
                    row.call,
                    row.concurrency,
                    row.medians.requests_per_sec,
                    row.medians.spread_percent,
                    row.medians.p50_us,
                    row.medians.p99_us
                );
            }
            let home_vs_slowest = home_against_slowest(database);
            if !home_vs_slowest.is_empty() {
                let _ = writeln!(out);
                for (concurrency, home, slowest, name) in home_vs_slowest {
                    let _ = writeln!(
                        out,
                        "- GetHome p50 at concurrency {concurrency}: {home:.0} µs, {:.2}× its slowest \
                         downstream call ({name}, {slowest:.0} µs).",
                        home / slowest
                    );
                }
            }
            if !database.bff.is_empty() {
                let _ = writeln!(
                    out,
                    "\nGetHome through a second gateway whose downstreams sit behind a proxy \
                     holding every answer {} ms (an I/O-bound fan-out: the calls run in parallel, \
                     so about one delay is the floor). Gateway CPU is its process's CPU time per \
                     GetHome it counted.\n",
                    crate::app_suite::DOWNSTREAM_DELAY.as_millis()
                );
                let _ = writeln!(
                    out,
                    "| concurrency | req/s | p50 µs | p99 µs | gateway CPU µs per call |"
                );
                let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
                for row in &database.bff {
                    let _ = writeln!(
                        out,
                        "| {} | {:.0} ± {:.0}% | {:.0} | {:.0} | {:.0} |",
                        row.concurrency,
                        row.medians.requests_per_sec,
                        row.medians.spread_percent,
                        row.medians.p50_us,
                        row.medians.p99_us,
                        row.gateway_cpu_us_per_call
                    );
                }
            }
            let _ = writeln!(
                out,
                "\nMemory per `shop serve` process. RSS counts every page a process maps, the \
                 binary's code in full; PSS divides the pages the five processes share (that \
                 code) among them.\n"
            );
            let _ = writeln!(
                out,
                "| service | idle RSS MiB | idle PSS MiB | peak RSS MiB (after the loads) |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|");
            for (service, idle, peak) in &database.memory {
                let _ = writeln!(
                    out,
                    "| {service} | {:.1} | {:.1} | {:.1} |",
                    idle.rss_kib as f64 / 1024.0,
                    idle.pss_kib as f64 / 1024.0,
                    *peak as f64 / 1024.0
                );
            }
            out.push('\n');
        }
        out
    }
}

/// Per concurrency: GetHome's p50, the slowest downstream p50 and its name.
fn home_against_slowest(
    database: &crate::app_suite::DatabaseResults,
) -> Vec<(u32, f64, f64, String)> {
    let home = database
        .calls
        .iter()
        .filter(|r| r.call.starts_with("WebBffService/GetHome"));
    home.filter_map(|home| {
        let slowest = database
            .calls
            .iter()
            .filter(|r| {
                r.concurrency == home.concurrency
                    && [
                        "UserService/GetMe",
                        "CatalogService/ListProducts (8)",
                        "OrderService/ListOrders",
                    ]
                    .iter()
                    .any(|name| r.call.starts_with(name))
            })
            .max_by(|a, b| a.medians.p50_us.total_cmp(&b.medians.p50_us))?;
        Some((
            home.concurrency,
            home.medians.p50_us,
            slowest.medians.p50_us,
            slowest.call.clone(),
        ))
    })
    .collect()
}
