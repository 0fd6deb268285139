//! Inbound ESP processing on arbitrary bytes: classification, SA lookup and decapsulation with an
//! SA of each suite family, never a panic. The first input byte picks the SA.
#![no_main]

use std::sync::OnceLock;

use dataplane::esp::decrypt::inbound;
use dataplane::{InboundSa, SliceBuf};
use libfuzzer_sys::fuzz_target;
use shared::sa::*;
use zeroize::Zeroizing;

fn sas() -> &'static Vec<InboundSa> {
    static SAS: OnceLock<Vec<InboundSa>> = OnceLock::new();
    SAS.get_or_init(|| {
        let suites = [
            Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 },
            Suite::AesGcm { key: AesKeySize::Aes128, icv_len: 8 },
            Suite::AesCbc { key: AesKeySize::Aes128, integrity: Integrity::HmacSha1_96 },
            Suite::AesGmac { key: AesKeySize::Aes128 },
        ];
        let mut v = Vec::new();
        for suite in suites {
            for (mode, esn) in [(Mode::Tunnel, false), (Mode::Transport, true)] {
                let cfg = SaConfig {
                    spi: 0x1000,
                    direction: Direction::In,
                    mode,
                    src: "198.18.0.1".parse().unwrap(),
                    dst: "198.18.0.2".parse().unwrap(),
                    encap: None,
                    suite,
                    enc_key: Zeroizing::new(vec![1; suite.enc_key_len()]),
                    auth_key: Zeroizing::new(vec![2; suite.auth_key_len()]),
                    esn,
                    replay_window: 64,
                    df: DfPolicy::Copy,
                    ts_local: TrafficSelector::any_of_family("0.0.0.0".parse().unwrap()),
                    ts_remote: TrafficSelector::any_of_family("0.0.0.0".parse().unwrap()),
                    soft: Limits::default(),
                    hard: Limits::default(),
                    idle_timeout_secs: 0,
                    ms_flags: MsSaFlags::default(),
                    reqid: 0,
                    policy_id: 0,
                };
                v.push(InboundSa::new(&cfg, None).unwrap());
            }
        }
        v
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, packet)) = data.split_first() else { return };
    let sa = &sas()[usize::from(pick) % sas().len()];
    let mut mem = vec![0u8; packet.len() + 256];
    if let Some(mut buf) = SliceBuf::with_packet(&mut mem, 128, packet) {
        let _ = inbound(&mut buf, &[4500], |_, _| Some(sa));
    }
});
