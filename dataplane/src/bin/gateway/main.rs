//! The gateway process and its tools.
//!
//! ```text
//! gateway run CONFIG [-- EAL ARGS...]   the DPDK dataplane (EAL arguments pass through unchanged;
//!                                       without any: --no-huge --no-pci -m 512, software ports)
//! gateway load CONFIG [--hold]          installs the file's SPD rules and static SAs in the region
//!                                       (--hold: stays the region's writer, printing its events)
//! gateway stats CONFIG                  prints the running gateway's statistics and SA counters
//! gateway check CONFIG                  validates the file
//! ```

mod mbuf_packet;
mod nd_stats;
mod poll;
mod stats;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::gateway::config::{Config, PortSpec};
use dataplane::gateway::counters::LcoreCounters;
use dataplane::gateway::ether::Mac;
use dataplane::gateway::pipeline::{Pipeline, Shared};
use dataplane::gateway::provision;
use dataplane::gateway::Side;
use dataplane::nd::NegotiationDiscovery;
use dpdk::{Eal, MacAddr, Mempool, MempoolConfig, Port, PortConfig, PortId};
use shared::ops::Writer;
use shared::policy::Policy;
use shared::reader::Reader;
use shared::region::Region;

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "usage: gateway run CONFIG [-- EAL ARGS...] | load CONFIG [--hold] | stats CONFIG | check CONFIG";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["run", config, rest @ ..] => run(Path::new(config), rest),
        ["load", config] => load(Path::new(config), false),
        ["load", config, "--hold"] => load(Path::new(config), true),
        ["stats", config] => show_stats(Path::new(config)),
        ["check", config] => Config::load(Path::new(config)).map(|_| println!("{config}: valid")).map_err(Error::from),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn stop_flag() -> Result<Arc<AtomicBool>, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}

fn load(path: &Path, hold: bool) -> Result<(), Error> {
    let config = Config::load(path)?;
    let region = Arc::new(Region::open_or_create(&config.region, provision::capacities())?);
    let mut writer = Writer::attach(region)?;
    let report = provision::load(&mut writer, &config)?;
    println!(
        "gateway load: {} SAs added, {} updated, {} kept, {} deleted; SPD {}; iked's {} SAs and {} rules left alone",
        report.sas_added,
        report.sas_updated,
        report.sas_kept,
        report.sas_deleted,
        if report.spd_published { "published" } else { "unchanged" },
        report.negotiated_sas,
        report.negotiated_rules
    );
    if hold {
        let stop = stop_flag()?;
        while !stop.load(Ordering::Relaxed) {
            while let Some(event) = writer.pop_event() {
                println!("gateway load: event {event:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn show_stats(path: &Path) -> Result<(), Error> {
    let config = Config::load(path)?;
    let file = config.stats_file.as_ref().ok_or("the configuration names no gateway.stats_file")?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e} (is the gateway running?)", file.display()))?;
    print!("{text}");
    print!("{}", stats::render_sas(&Region::open(&config.region)?));
    Ok(())
}

/// The SPD's rules with their ids, read through a reader slot held only meanwhile.
fn spd_rules(region: &Arc<Region>) -> Vec<(u32, Policy)> {
    Reader::attach(region.clone()).map(|r| r.spd().iter().map(|rec| (rec.id, rec.to_policy())).collect()).unwrap_or_default()
}

/// The EAL arguments: the user's, or the no-NIC no-hugepage default; plus the configured vdevs.
fn eal_args(config: &Config, user: &[&str]) -> Vec<String> {
    let user: Vec<String> = user.iter().skip_while(|a| **a == "--").map(|s| s.to_string()).collect();
    let mut args = if user.is_empty() {
        let prefix = format!("--file-prefix=gateway-{}", std::process::id());
        vec!["--no-huge".into(), "--no-pci".into(), "-m".into(), "512".into(), "--no-shconf".into(), prefix]
    } else {
        user
    };
    // Ports first: virtual devices get port ids in this order (protected 0, unprotected 1).
    for spec in [&config.protected, &config.unprotected] {
        args.extend(spec.vdev.iter().map(|v| format!("--vdev={v}")));
    }
    for spec in [&config.protected, &config.unprotected] {
        args.push(format!("--vdev={}", spec.exception_vdev));
    }
    args
}

/// Gives the port the configured MTU, so that the device (for af_packet, the kernel interface
/// under it) carries frames of that size and no larger. A driver that cannot set an MTU keeps
/// its own; the gateway's checks against the configured MTU apply either way.
fn set_port_mtu(port: &Port<'_>, spec: &PortSpec) -> Result<(), Error> {
    match port.set_mtu(spec.mtu) {
        Ok(()) => Ok(()),
        Err(e) if e.is_unsupported() => {
            let own = port.mtu().map_or_else(|e| e.to_string(), |m| m.to_string());
            eprintln!("gateway: {}: the driver cannot set an MTU (its own: {own}); the gateway enforces {} itself", spec.device, spec.mtu);
            Ok(())
        }
        Err(e) => Err(format!("{}: MTU {}: {e}", spec.device, spec.mtu).into()),
    }
}

/// Brings the exception interface up in the kernel with the port's MAC and addresses.
/// Runs `ip ARGS` (iproute2); an address that already exists is not an error.
fn ip_command(args: &[&str]) -> Result<(), Error> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("File exists") {
        return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(())
}

fn configure_exception_iface(spec: &PortSpec, mac: Mac) -> Result<(), Error> {
    let ip = ip_command;
    let iface = spec.exception_iface.as_str();
    // The kernel's own packets leave through the port: the same MTU.
    ip(&["link", "set", "dev", iface, "address", &mac.to_string(), "mtu", &spec.mtu.to_string(), "up"])?;
    for net in &spec.addresses {
        let addr = net.to_string();
        if net.addr.is_ipv4() {
            ip(&["addr", "add", &addr, "dev", iface])?;
        } else {
            ip(&["addr", "add", &addr, "dev", iface, "nodad"])?;
        }
    }
    Ok(())
}

fn run(path: &Path, eal_user_args: &[&str]) -> Result<(), Error> {
    let config = Config::load(path)?;
    let stop = stop_flag()?;
    let eal = Eal::init(eal_args(&config, eal_user_args))?;
    let workers = eal.worker_lcores();
    if workers.is_empty() {
        return Err("no worker lcore: give the EAL at least two lcores (e.g. -l 0,1)".into());
    }
    let queues = if config.queues == 0 { workers.len() as u16 } else { config.queues };
    let region = Arc::new(Region::open_or_create(&config.region, provision::capacities())?);
    let pool = Mempool::new(&eal, "gateway_mbufs", MempoolConfig { mbufs: 16383, ..MempoolConfig::default() })?;
    let port_config = PortConfig { rx_queues: queues, tx_queues: queues, rx_descriptors: 1024, tx_descriptors: 1024 };
    let open = |name: &str| -> Result<Port<'_>, Error> {
        let mut port = Port::configure(PortId::by_name(&eal, name)?, &pool, port_config)?;
        port.start()?;
        Ok(port)
    };
    let ports = [open(&config.protected.device)?, open(&config.unprotected.device)?];
    for (port, spec) in ports.iter().zip([&config.protected, &config.unprotected]) {
        set_port_mtu(port, spec)?;
    }
    let taps = [open(&config.protected.exception_device)?, open(&config.unprotected.exception_device)?];
    let mut macs = [Mac::default(); 2];
    for (i, spec) in [&config.protected, &config.unprotected].into_iter().enumerate() {
        // Promiscuous mode is not supported by every software port; it is not needed for frames
        // addressed to the port's MAC, broadcast or multicast.
        let _ = ports[i].set_promiscuous(true);
        macs[i] = Mac(ports[i].mac_addr()?.0);
        taps[i].set_mac_addr(MacAddr(macs[i].0))?;
        configure_exception_iface(spec, macs[i])?;
    }
    // The kernel's own traffic (IKE, ICMP replies) to routed destinations leaves through the
    // exception interface of the route's side, and then through the outbound SPD like any other.
    for route in config.routes.iter().filter(|r| r.via.is_some()) {
        let spec = match route.side {
            Side::Protected => &config.protected,
            Side::Unprotected => &config.unprotected,
        };
        let via = route.via.map(|v| v.to_string()).unwrap_or_default();
        ip_command(&["route", "replace", &route.net.to_string(), "via", &via, "dev", &spec.exception_iface])?;
    }
    let setup = Arc::new(config.setup(macs[0], macs[1]));
    let nd = config.negotiation_discovery.map(|c| {
        let engine = Arc::new(NegotiationDiscovery::new(c));
        let mb = engine.table().memory_bytes() as f64 / 1e6;
        eprintln!("gateway: negotiation discovery on: {} flows ({mb:.1} MB), idle timeout {} s", c.capacity, c.idle_timeout);
        engine
    });
    let shared = Shared { nd: nd.clone(), ..Shared::default() };
    let idle_sleep = Duration::from_micros(config.idle_sleep_us);
    let lcores: Vec<(u32, Arc<LcoreCounters>)> = workers.iter().map(|l| (l.id(), Arc::new(LcoreCounters::default()))).collect();
    eprintln!(
        "gateway: {} worker lcore(s), {queues} queue(s) per port, protected {} ({}), unprotected {} ({}), RSS {}",
        workers.len(),
        config.protected.device,
        macs[0],
        config.unprotected.device,
        macs[1],
        ports[0].rss_enabled() && ports[1].rss_enabled()
    );
    // Lcores working side by side each call their own copy of intel-ipsec-mb (poll.rs); a lone
    // lcore gains nothing from one.
    let private_crypto = workers.len().min(usize::from(queues)) > 1;
    eal.scope(|scope| -> Result<(), Error> {
        let mut jobs = Vec::new();
        // Launched jobs poll until `stop`: set it if a later launch fails.
        let mut launch = || -> Result<(), Error> {
            for (i, lcore) in workers.iter().enumerate() {
                // Queues beyond the lcore count stay unpolled; each lcore owns its own.
                if i >= usize::from(queues) {
                    break;
                }
                let q = i as u16;
                let lcore_queues = poll::LcoreQueues {
                    port_rx: [ports[0].rx_queue(q)?, ports[1].rx_queue(q)?],
                    port_tx: [ports[0].tx_queue(q)?, ports[1].tx_queue(q)?],
                    tap_rx: [taps[0].rx_queue(q)?, taps[1].rx_queue(q)?],
                    tap_tx: [taps[0].tx_queue(q)?, taps[1].tx_queue(q)?],
                };
                let pipeline = Pipeline::new(Reader::attach(region.clone())?, setup.clone(), &shared, lcores[i].1.clone());
                let (pool, stop) = (&pool, &stop);
                jobs.push(scope.launch(*lcore, move || poll::run(lcore_queues, pipeline, pool, stop, idle_sleep, private_crypto))?);
            }
            Ok(())
        };
        if let Err(e) = launch() {
            stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
        let mut last_log = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            let port_stats: Vec<(&str, dpdk::PortStats)> = ["protected", "unprotected", "protected_exception", "unprotected_exception"]
                .into_iter()
                .zip(ports.iter().chain(taps.iter()))
                .filter_map(|(name, p)| p.stats().ok().map(|s| (name, s)))
                .collect();
            let (mut text, line) = stats::render(&lcores, &port_stats);
            if let Some(nd) = &nd {
                text.push_str(&nd_stats::render(&nd.report(), &spd_rules(&region)));
            }
            if let Some(file) = &config.stats_file {
                if let Err(e) = stats::write_file(file, &text) {
                    eprintln!("gateway: {}: {e}", file.display());
                }
            }
            if config.log_interval_secs > 0 && last_log.elapsed() >= Duration::from_secs(config.log_interval_secs) {
                eprintln!("{line}");
                last_log = Instant::now();
            }
        }
        for job in jobs {
            job.join()?;
        }
        Ok(())
    })?;
    let (_, line) = stats::render(&lcores, &[]);
    eprintln!("{line}");
    eprintln!("gateway: stopped");
    Ok(())
}
