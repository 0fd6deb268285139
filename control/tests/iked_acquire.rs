//! ACQUIREs against a peer that refuses what they ask for: iked A has a trap rule for B's
//! selectors in a shared region, B (another iked, in its own network namespace, 198.18.0.0/15
//! only) accepts A's IKE SA but refuses its child SA (no common ESP proposal). The test plays the
//! dataplane, repeating the ACQUIRE every 100 ms for 3 s as a gateway does while a rule has no SA;
//! A starts a negotiation at most once per ACQUIRE_HOLD (2 s), not on every repeat. Needs root.
mod common;

use common::lab::Lab;
use common::region::ping_acquire;
use shared::reader::Reader;
use shared::region::Region;
use std::sync::Arc;
use std::time::{Duration, Instant};

const A: &str = "198.18.0.1";
const B: &str = "198.18.0.2";

fn config(lab: &Lab, side: &str, esp: &str, extra: &str) -> String {
    let (local, remote, other) = if side == "a" {
        (A, B, "b")
    } else {
        (B, A, "a")
    };
    format!(
        "[daemon]\nlisten = \"{local}\"\ncontrol_socket = \"{sock}\"\n{extra}\n\
         [[peer]]\nname = \"other\"\nremote = \"{remote}\"\nlocal_id = \"fqdn:{side}.example\"\n\
         remote_id = \"fqdn:{other}.example\"\npsk = \"a pre-shared key for the acquire test\"\n\
         ike = [\"aes256gcm16-prfsha256-ecp256\"]\nesp = [\"{esp}\"]\n\
         local_ts = [\"198.18.{mine}.0/24\"]\nremote_ts = [\"198.18.{theirs}.0/24\"]\n{trap}",
        sock = lab.socket_of(side).display(),
        mine = if side == "a" { 1 } else { 2 },
        theirs = if side == "a" { 2 } else { 1 },
        trap = if side == "a" { "trap = true\n" } else { "" },
    )
}

#[test]
fn repeated_acquires_start_one_negotiation_per_hold() {
    let mut lab = Lab::new("aq", "h");
    lab.two_namespaces(A, B);
    let region = lab.path("region");
    let b_config = config(&lab, "b", "aes128gcm16", "");
    lab.start_iked_named(&format!("{}b", lab.name), "b", &b_config);
    let a_config = config(
        &lab,
        "a",
        "aes256gcm16",
        &format!("region = \"{}\"\n", region.display()),
    );
    lab.start_iked_named(&format!("{}a", lab.name), "a", &a_config);

    let mut dataplane = Reader::attach(Arc::new(Region::open(&region).unwrap())).unwrap();
    let trap = dataplane.spd().iter().next().expect("iked's trap rule").id;
    let acquire = ping_acquire(trap);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        dataplane.emit(&acquire).unwrap();
        dataplane.quiescent();
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(lab.path("a.log")).unwrap();
    let started = log.matches("iked: ACQUIRE for").count();
    // 30 ACQUIREs over 3 s: the first starts the IKE SA (whose child B refuses), one more may
    // ask again for a child after 2 s.
    assert!(
        (1..=2).contains(&started),
        "{started} negotiations started:\n{}",
        lab.logs()
    );
    let stats = lab.ctl_of("a", "stats");
    assert!(
        stats["negotiations_failed"].as_u64() >= Some(1),
        "B refused nothing: {stats}\n{}",
        lab.logs()
    );
}
