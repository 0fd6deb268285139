//! `shmctl`: operate and demonstrate the shared region.
//!
//! ```text
//! shmctl demo   [--seconds S] [--sas N]       writer and reader processes on a fresh region, then a report
//! shmctl writer --path P --first-spi S [--ops N] [--live N] [--rate R] [--log]
//! shmctl reader --path P --spis A-B [--seconds S]
//! shmctl seq    --path P --reqid R [--block N] [--blocks M]
//! shmctl show   --path P
//! ```
//! `writer`, `reader` and `seq` are the processes the demo and the multi-process tests start.

use std::collections::{HashMap, VecDeque};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::addr::RawAddr;
use shared::event::SaKey;
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::reader::Reader;
use shared::region::Region;
use shared::sad::SaHandle;
use shared::seqlock::Contended;
use shared::synthetic::{synthetic_sa, synthetic_version, SYNTHETIC_DST};

const USAGE: &str = "usage: shmctl demo [--seconds S] [--sas N]
       shmctl writer --path P --first-spi S [--ops N] [--live N] [--rate R] [--log]
       shmctl reader --path P --spis A-B [--seconds S]
       shmctl seq --path P --reqid R [--block N] [--blocks M]
       shmctl show --path P";

/// `--name value` options and `--flag` switches.
struct Args(HashMap<String, Option<String>>);

impl Args {
    fn parse(args: &[String]) -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let name = a.strip_prefix("--").ok_or_else(|| format!("unexpected argument '{a}'"))?;
            let value = it.next_if(|v| !v.starts_with("--")).cloned();
            map.insert(name.to_owned(), value);
        }
        Ok(Args(map))
    }
    fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
    fn text(&self, name: &str) -> Result<&str, String> {
        self.0.get(name).and_then(|v| v.as_deref()).ok_or_else(|| format!("--{name} is required"))
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> Result<T, String> {
        match self.0.get(name) {
            Some(Some(v)) => v.parse().map_err(|_| format!("--{name}: '{v}' is not a number")),
            Some(None) => Err(format!("--{name} needs a value")),
            None => default.ok_or_else(|| format!("--{name} is required")),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = Args::parse(rest).and_then(|args| match command.as_str() {
        "demo" => demo(&args),
        "writer" => writer(&args),
        "reader" => reader(&args),
        "seq" => seq(&args),
        "show" => show(&args),
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shmctl {command}: {e}");
            ExitCode::from(2)
        }
    }
}

fn open(args: &Args) -> Result<Arc<Region>, String> {
    Region::open(args.text("path")?).map(Arc::new).map_err(|e| e.to_string())
}

/// Installs, updates and deletes synthetic SAs: a window of `live` SAs slides upwards from
/// `first-spi`, starting from the synthetic SAs a previous writer left in the region. With
/// `--log`, each change is printed once it has returned.
fn writer(args: &Args) -> Result<ExitCode, String> {
    let first: u32 = args.num("first-spi", None)?;
    let ops: u64 = args.num("ops", Some(u64::MAX))?;
    let live_target: usize = args.num("live", Some(1_000))?;
    let rate: f64 = args.num("rate", Some(f64::INFINITY))?;
    let log = args.flag("log");
    let mut w = Writer::attach(open(args)?).map_err(|e| e.to_string())?;
    let mut adopted: Vec<(u32, u32)> = w
        .list_sas()
        .iter()
        .filter_map(|sa| Some((sa.key.spi, synthetic_version(sa.config.as_ref()?)?)))
        .collect();
    adopted.sort_unstable();
    let mut live: VecDeque<(u32, u32)> = adopted.into();
    let mut next = live.back().map_or(first, |(spi, _)| spi + 1).max(first);
    let mut rng = 0x853c_49e6_748f_ea9bu64 ^ next as u64;
    let (mut adds, mut updates, mut deletes) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    for i in 0..ops {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if live.len() < live_target {
            w.add_sa(&synthetic_sa(next, 0)).map_err(|e| e.to_string())?;
            if log {
                println!("add {next} 0");
            }
            live.push_back((next, 0));
            next += 1;
            adds += 1;
        } else if rng % 10 < 8 {
            let at = (rng % live.len() as u64) as usize;
            let (spi, version) = live[at];
            w.update_sa(&synthetic_sa(spi, version + 1)).map_err(|e| e.to_string())?;
            if log {
                println!("update {spi} {}", version + 1);
            }
            live[at].1 += 1;
            updates += 1;
        } else {
            let (spi, _) = live.pop_front().unwrap_or_default();
            w.del_sa(SaKey { spi, dst: SYNTHETIC_DST }).map_err(|e| e.to_string())?;
            if log {
                println!("del {spi}");
            }
            deletes += 1;
        }
        if i % 1_000 == 0 {
            let due = Duration::from_secs_f64(i as f64 / rate);
            std::thread::sleep(due.saturating_sub(start.elapsed()));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "writer: {adds} installs, {updates} updates, {deletes} deletes in {secs:.2} s ({:.0} changes/s); {} SAs live",
        (adds + updates + deletes) as f64 / secs,
        live.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Looks up random SPIs in bursts of 32 and checks every record found; exits 1 on a torn read.
fn reader(args: &Args) -> Result<ExitCode, String> {
    let (lo, hi) = args.text("spis")?.split_once('-').ok_or("--spis takes A-B")?;
    let lo: u32 = lo.parse().map_err(|_| "--spis: bad start")?;
    let hi: u32 = hi.parse().map_err(|_| "--spis: bad end")?;
    if hi <= lo {
        return Err("--spis: empty range".into());
    }
    let seconds: f64 = args.num("seconds", Some(2.0))?;
    let mut r = Reader::attach(open(args)?).map_err(|e| e.to_string())?;
    let dst = RawAddr::from(SYNTHETIC_DST);
    let (mut lookups, mut found, mut torn, mut contended) = (0u64, 0u64, 0u64, 0u64);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    let mut keys = [(0u32, dst); 32];
    let mut out: [Result<Option<SaHandle>, Contended>; 32] = [Ok(None); 32];
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        for k in keys.iter_mut() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            k.0 = lo + (rng % (hi - lo) as u64) as u32;
        }
        r.sad().lookup_burst(&keys, &mut out);
        for ((spi, _), result) in keys.iter().zip(&out) {
            lookups += 1;
            match result {
                Ok(Some(h)) => {
                    found += 1;
                    if let Ok(Some(record)) = r.read_sa(*h) {
                        let whole = record.spi == *spi && record.to_config().ok().and_then(|c| synthetic_version(&c)).is_some();
                        torn += u64::from(!whole);
                    }
                }
                Ok(None) => {}
                Err(Contended) => contended += 1,
            }
        }
        r.quiescent();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"pid\":{},\"lookups\":{lookups},\"found\":{found},\"torn\":{torn},\"contended\":{contended},\"lookups_per_s\":{:.0}}}",
        std::process::id(),
        lookups as f64 / secs
    );
    Ok(if torn == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Reserves outbound sequence-number blocks of the SA linked to `reqid`, printing each block.
fn seq(args: &Args) -> Result<ExitCode, String> {
    let reqid: u32 = args.num("reqid", None)?;
    let block: u64 = args.num("block", Some(64))?;
    let blocks: u64 = args.num("blocks", Some(u64::MAX))?;
    let r = Reader::attach(open(args)?).map_err(|e| e.to_string())?;
    let h = r.outbound(reqid).map_err(|e| e.to_string())?.ok_or(format!("no outbound SA for reqid {reqid}"))?;
    for _ in 0..blocks {
        let range = r.reserve_seq(h, block, false).map_err(|e| e.to_string())?;
        println!("reserved {} {}", range.start, range.end);
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(ExitCode::SUCCESS)
}

fn show(args: &Args) -> Result<ExitCode, String> {
    let region = open(args)?;
    let layout = *region.layout();
    println!(
        "region {}: {} MiB, capacity {} SAs, {} rules, {} readers; writer generation {}",
        region.path().display(),
        layout.size >> 20,
        layout.capacities.sas,
        layout.capacities.policies,
        layout.capacities.readers,
        region.writer_generation()
    );
    for sa in shared::inspect::list_sas(&region) {
        let c = sa.counters;
        println!(
            "  SA spi={:#010x} dst={} {:?} packets={} bytes={} next_seq={}",
            sa.key.spi, sa.key.dst, sa.state, c.packets, c.bytes, c.next_seq
        );
    }
    let reader = Reader::attach(region).map_err(|e| e.to_string())?;
    let spd = reader.spd();
    println!("  SPD version {}: {} rules", spd.version, spd.len());
    for rule in spd.iter() {
        println!("  rule id={} {:?}", rule.id, rule.to_policy());
    }
    Ok(ExitCode::SUCCESS)
}

/// The README's main command: a writer process churns SAs in a fresh region while two reader
/// processes look them up and verify every record; then a report, and the region is removed.
fn demo(args: &Args) -> Result<ExitCode, String> {
    let seconds: f64 = args.num("seconds", Some(3.0))?;
    let sas: u32 = args.num("sas", Some(100_000))?;
    let path = format!("/dev/shm/ipsec-gw-demo-{}", std::process::id());
    let region = Region::create(&path, Capacities { sas, ..Capacities::default() }).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "demo: region {path}: {} MiB for {sas} SAs ({} bytes per SA slot with its index and counters)",
        region.layout().size >> 20,
        bytes_per_sa()
    );
    let first = 1_000u32;
    let live = (sas / 2).max(1);
    // Rounds of half a second at 500,000 changes/s; a tenth of the changes are deletes, so the
    // window of live SPIs moves by about 25,000 a round.
    let (rate, ops_per_round) = (500_000u64, 250_000u64);
    let spis = format!("{first}-{}", first as u64 + live as u64 + ops_per_round / 10 * (2 * seconds.ceil() as u64 + 1));
    let spawn = |args: &[&str]| Command::new(&exe).args(args).stdout(Stdio::piped()).spawn();
    let secs = seconds.to_string();
    let readers: Vec<_> = (0..2)
        .map(|_| spawn(&["reader", "--path", &path, "--spis", &spis, "--seconds", &secs]))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut writer_runs = 0;
    let start = Instant::now();
    let mut ok = true;
    // The writer runs in rounds until the readers are done; each round is a new process that
    // attaches to the region its predecessor left, as a restarted control plane would.
    while ok && start.elapsed().as_secs_f64() < seconds {
        let args = [
            "writer", "--path", &path, "--first-spi", &first.to_string(), "--ops", &ops_per_round.to_string(),
            "--live", &live.to_string(), "--rate", &rate.to_string(),
        ];
        let out = spawn(&args).and_then(|c| c.wait_with_output()).map_err(|e| e.to_string())?;
        ok &= out.status.success();
        print!("demo: writer process {writer_runs}: {}", String::from_utf8_lossy(&out.stdout));
        writer_runs += 1;
    }
    for r in readers {
        let out = r.wait_with_output().map_err(|e| e.to_string())?;
        ok &= out.status.success();
        print!("demo: reader {}", String::from_utf8_lossy(&out.stdout));
    }
    let live_now = shared::inspect::list_sas(&region).len();
    println!("demo: {live_now} SAs in the region at the end; writer generation {}", region.writer_generation());
    drop(region);
    Region::remove(&path).map_err(|e| e.to_string())?;
    println!("demo: {}", if ok { "all reads consistent; region removed" } else { "FAILED (see above)" });
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Region bytes per SA: its slot, two index entries and its runtime counters.
fn bytes_per_sa() -> usize {
    std::mem::size_of::<shared::sad::SaSlot>() + 2 * 8 + std::mem::size_of::<shared::counters::SaRuntime>()
}
