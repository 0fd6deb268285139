//! The management socket: one command per connection, one JSON answer.
//! Commands: `list`, `stats`, `initiate <peer>`, `liveness <ike spi hex>`, `terminate <ike spi hex>`,
//! `terminate-child <ike spi hex> <inbound spi hex>`, `rekey-child <ike spi hex> <inbound spi hex>`,
//! `create-child <ike spi hex>`, `rekey-ike <ike spi hex>`, `reauth <ike spi hex>`. An IKE SA is named by our SPI (SPIi if we initiated it, else SPIr).
use super::Daemon;
use crate::ikev2::Engine;
use mio::net::UnixListener;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

pub(super) fn accept(daemon: &mut Daemon, listener: &UnixListener) {
    while let Ok((stream, _)) = listener.accept() {
        // mio streams are non-blocking; a management request is tiny, so read it blocking with
        // a deadline.
        let std_stream = stream_into_std(stream);
        let _ = std_stream.set_nonblocking(false);
        let _ = std_stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut line = String::new();
        if BufReader::new(&std_stream).read_line(&mut line).is_err() {
            continue;
        }
        let answer = command(daemon, line.trim());
        let _ = writeln!(&std_stream, "{answer}");
    }
}

fn stream_into_std(stream: mio::net::UnixStream) -> std::os::unix::net::UnixStream {
    // mio's stream converts into an owned descriptor, which std's stream takes over.
    let fd: std::os::fd::OwnedFd = stream.into();
    std::os::unix::net::UnixStream::from(fd)
}

fn hex_u64(text: Option<&str>) -> Result<u64, String> {
    text.and_then(|t| u64::from_str_radix(t, 16).ok())
        .ok_or_else(|| "expected a hexadecimal SPI".to_string())
}

pub(crate) fn command(daemon: &mut Daemon, line: &str) -> Value {
    let mut words = line.split_whitespace();
    let result: Result<Value, String> = match words.next() {
        Some("list") => Ok(list(daemon)),
        Some("stats") => Ok(sum(daemon.shards.call_all(|e| stats(e.stats())))),
        Some("initiate") => match words.next() {
            Some(peer) => daemon
                .initiate(peer)
                .map(|spi| json!({ "ike_spi": format!("{spi:016x}") })),
            None => Err("usage: initiate <peer>".into()),
        },
        Some("liveness") => hex_u64(words.next()).and_then(|spi| {
            if on_sa(daemon, spi, move |e| e.check_liveness(Instant::now(), spi)) {
                Ok(json!({ "liveness": format!("{spi:016x}") }))
            } else {
                Err(format!("no established IKE SA {spi:016x}"))
            }
        }),
        Some("create-child") => hex_u64(words.next()).and_then(|spi| {
            if on_sa(daemon, spi, move |e| e.create_child(Instant::now(), spi)) {
                Ok(json!({ "create-child": format!("{spi:016x}") }))
            } else {
                Err(format!("no established IKE SA {spi:016x} that is not being replaced"))
            }
        }),
        Some("rekey-ike") => hex_u64(words.next()).and_then(|spi| {
            if on_sa(daemon, spi, move |e| e.rekey_ike(Instant::now(), spi)) {
                Ok(json!({ "rekey-ike": format!("{spi:016x}") }))
            } else {
                Err(format!("no established IKE SA {spi:016x} that is not being replaced"))
            }
        }),
        Some("reauth") => hex_u64(words.next()).and_then(|spi| {
            daemon
                .shards
                .call(daemon.shards.of_spi(spi), move |e| {
                    e.reauthenticate(Instant::now(), spi)
                        .map_err(|e| format!("IKE SA {spi:016x}: {e}"))
                })
                .unwrap_or_else(|| Err("the engine did not answer".into()))
                .map(|new| json!({ "reauth": format!("{spi:016x}"), "ike_spi": format!("{new:016x}") }))
        }),
        Some("terminate") => hex_u64(words.next()).and_then(|spi| {
            if on_sa(daemon, spi, move |e| e.terminate(Instant::now(), spi)) {
                Ok(json!({ "terminating": format!("{spi:016x}") }))
            } else {
                Err(format!("no established IKE SA {spi:016x}"))
            }
        }),
        Some(verb @ ("terminate-child" | "rekey-child")) => hex_u64(words.next()).and_then(|ike| {
            let child = words
                .next()
                .and_then(|t| u32::from_str_radix(t, 16).ok())
                .ok_or("expected an inbound SPI")?;
            let rekey = verb == "rekey-child";
            let queued = on_sa(daemon, ike, move |e| {
                if rekey {
                    e.rekey_child(Instant::now(), ike, child)
                } else {
                    e.terminate_child(Instant::now(), ike, child)
                }
            });
            if queued {
                Ok(json!({ verb: format!("{child:08x}") }))
            } else {
                Err(format!("no established IKE SA {ike:016x}"))
            }
        }),
        other => Err(format!(
            "unknown command {other:?}; try list, stats, initiate, liveness, terminate, terminate-child, create-child, rekey-child, rekey-ike, reauth"
        )),
    };
    result.unwrap_or_else(|error| json!({ "error": error }))
}

/// Runs `job` on the engine that holds IKE SA `spi`.
fn on_sa(
    daemon: &Daemon,
    spi: u64,
    job: impl FnOnce(&mut Engine) -> bool + Send + 'static,
) -> bool {
    daemon
        .shards
        .call(daemon.shards.of_spi(spi), job)
        .unwrap_or(false)
}

fn list(daemon: &Daemon) -> Value {
    let sas: Vec<Value> = daemon
        .shards
        .call_all(|e| e.ike_sas())
        .into_iter()
        .flatten()
        .map(|sa| {
            let children: Vec<Value> = sa
                .children
                .iter()
                .map(|c| {
                    json!({
                        "inbound_spi": format!("{:08x}", c.inbound_spi),
                        "outbound_spi": format!("{:08x}", c.outbound_spi),
                        "suite": format!("{:?}", c.suite),
                        "encap": c.encap.map(|e| json!([e.src_port, e.dst_port])),
                        "local_ts": c.local_ts.iter().map(|t| format!("{}-{}", t.start, t.end)).collect::<Vec<_>>(),
                        "remote_ts": c.remote_ts.iter().map(|t| format!("{}-{}", t.start, t.end)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "spi_i": format!("{:016x}", sa.spi_i),
                "spi_r": format!("{:016x}", sa.spi_r),
                "initiator": sa.initiator,
                "peer": sa.peer,
                "local": sa.local.to_string(),
                "remote": sa.remote.to_string(),
                "established": sa.established,
                "nat": sa.nat,
                "children": children,
            })
        })
        .collect();
    json!(sas)
}

/// The counters of one engine.
fn stats(s: &crate::ikev2::Stats) -> Value {
    json!({
        "datagrams_received": s.datagrams_received,
        "malformed": s.malformed,
        "unknown_spi": s.unknown_spi,
        "unexpected_message_id": s.unexpected_message_id,
        "integrity_failures": s.integrity_failures,
        "retransmissions_sent": s.retransmissions_sent,
        "retransmitted_requests_answered": s.retransmitted_requests_answered,
        "cookies_sent": s.cookies_sent,
        "ike_sas_established": s.ike_sas_established,
        "child_sas_established": s.child_sas_established,
        "negotiations_failed": s.negotiations_failed,
        "config_attributes_ignored": s.config_attributes_ignored,
        "unknown_vendor_ids": s.unknown_vendor_ids,
        "liveness_answered_by_peer": s.liveness_answered_by_peer,
        "liveness_answered": s.liveness_answered,
        "invalid_spi_sent": s.invalid_spi_sent,
        "invalid_spi_rate_limited": s.invalid_spi_rate_limited,
        "invalid_spi_received": s.invalid_spi_received,
        "authentication_failed_sent": s.authentication_failed_sent,
        "authentication_failed_received": s.authentication_failed_received,
    })
}

/// The engines' counters added up.
fn sum(per_engine: Vec<Value>) -> Value {
    let mut total = serde_json::Map::new();
    for engine in per_engine {
        for (name, value) in engine.as_object().into_iter().flatten() {
            let count = total.get(name).and_then(Value::as_u64).unwrap_or(0);
            total.insert(name.clone(), json!(count + value.as_u64().unwrap_or(0)));
        }
    }
    Value::Object(total)
}
