//! `run-file-server --metrics ADDR`: the server's statistics (`Server::stats`) and histograms of
//! file size and transfer duration, in the Prometheus text format (prometheus-client encodes
//! it), served on GET /metrics. No label ever holds a file name, a peer or an identity.

use std::fmt::Error as FmtError;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use knsock::{Server, ServerStats, STATS_CODES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::http;

/// The histograms the received handler feeds (cheap clones share them).
#[derive(Clone)]
pub(crate) struct Histograms {
    size: Histogram,
    duration: Histogram,
}

impl Histograms {
    pub(crate) fn new() -> Histograms {
        Histograms {
            // 1 KiB to 64 GiB, ×4 a bucket.
            size: Histogram::new(exponential_buckets(1024.0, 4.0, 14)),
            // 1 ms to about 70 minutes, ×4 a bucket.
            duration: Histogram::new(exponential_buckets(0.001, 4.0, 12)),
        }
    }

    /// A file stored: its size and how long it took from its offer.
    pub(crate) fn observe(&self, size: u64, took: Duration) {
        self.size.observe(size as f64);
        self.duration.observe(took.as_secs_f64());
    }
}

/// `HOST:PORT`, or a bare `PORT` on loopback.
pub(crate) fn address(s: &str) -> Result<SocketAddr, String> {
    let text = match s.parse::<u16>() {
        Ok(port) => format!("127.0.0.1:{port}"),
        Err(_) => s.to_string(),
    };
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("--metrics {s:?}: expected HOST:PORT or PORT"))
}

/// Binds `addr` and serves the metrics from a thread of their own; returns the bound address.
pub(crate) fn serve(
    addr: SocketAddr,
    server: Arc<Server>,
    histograms: Histograms,
) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("metrics address: {e}"))?;
    let mut registry = Registry::with_prefix("knsock");
    registry.register_with_unit(
        "file_size",
        "Sizes of the files stored",
        prometheus_client::registry::Unit::Bytes,
        histograms.size,
    );
    registry.register_with_unit(
        "transfer_duration",
        "Time from a file's offer to its commit, for the files stored",
        prometheus_client::registry::Unit::Seconds,
        histograms.duration,
    );
    registry.register_collector(Box::new(StatsCollector(server)));
    std::thread::Builder::new()
        .name("kn-sock-metrics".into())
        .spawn(move || {
            http::serve(listener, || {
                let mut text = String::new();
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
                    .map(|()| text)
                    .map_err(|_| ())
            })
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(bound)
}

/// Encodes a fresh `Server::stats` snapshot on every scrape.
struct StatsCollector(Arc<Server>);

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsCollector")
    }
}

/// Counters and gauges: (name, help, value). Counter names get `_total` when encoded.
type Row = (&'static str, &'static str, u64);

fn counters(s: &ServerStats) -> [Row; 12] {
    [
        (
            "connections_accepted",
            "Connections accepted",
            s.connections_accepted,
        ),
        ("files_received", "Files stored", s.files_received),
        (
            "files_skipped",
            "Offers answered SKIP (already held)",
            s.files_skipped,
        ),
        (
            "received_bytes",
            "Bytes read from senders, frames included",
            s.bytes_received,
        ),
        ("stored_bytes", "Bytes of the files stored", s.bytes_stored),
        (
            "reused_bytes",
            "Bytes deltas took from old copies",
            s.bytes_reused,
        ),
        ("resumes", "Uploads resumed", s.resumes),
        (
            "auth_failures",
            "Senders refused for their credentials",
            s.auth_failures,
        ),
        (
            "tls_handshakes",
            "TLS handshakes completed",
            s.tls_handshakes,
        ),
        (
            "store_requests",
            "Requests to the object store",
            s.store_requests,
        ),
        (
            "store_failures",
            "Failed requests to the object store",
            s.store_failures,
        ),
        (
            "connections_busy",
            "Connections refused at the connection cap (\"receiver busy\")",
            s.connections_busy,
        ),
    ]
}

fn gauges(s: &ServerStats) -> [Row; 9] {
    [
        (
            "connections_open",
            "Connections served now",
            s.connections_open,
        ),
        (
            "connections_max",
            "Most connections served at once",
            s.connections_max,
        ),
        ("decoders_in_use", "zstd decoders in use", s.decoders_in_use),
        ("decoders_max", "Most zstd decoders at once", s.decoders_max),
        (
            "files_in_flight",
            "Files admitted, not yet stored or failed",
            s.files_in_flight,
        ),
        (
            "space_reserved_bytes",
            "Disk bytes promised to files in flight",
            s.space_reserved,
        ),
        (
            "descriptors_open",
            "Descriptors the process has open",
            s.descriptors_open,
        ),
        (
            "descriptors_limit",
            "The process's descriptor limit",
            s.descriptors_limit,
        ),
        ("up", "1 while the receiver runs", 1),
    ]
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), FmtError> {
        let s = self.0.stats();
        for (name, help, value) in counters(&s) {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        for (name, help, value) in gauges(&s) {
            let g = ConstGauge::new(value as i64);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let by_code = [
            (
                "files_rejected",
                "Offers refused before data, by code",
                &s.files_rejected,
            ),
            (
                "files_failed",
                "Files not stored after data, by code",
                &s.files_failed,
            ),
        ];
        for (name, help, values) in by_code {
            let kind = ConstCounter::new(0u64).metric_type();
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (code, &n) in values.iter().enumerate().take(STATS_CODES) {
                let labels = [("code", code.to_string())];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
