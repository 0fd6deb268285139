//! Finds the system DPDK with pkg-config, compiles the C shim against it and generates the
//! bindings with bindgen. DPDK is linked as shared libraries; EAL then loads the poll-mode
//! drivers itself from its built-in driver directory (Debian: /usr/lib/<triple>/dpdk/pmds-23.0).

use std::env;
use std::path::PathBuf;

/// The DPDK release the bindings are written against (Debian 12's libdpdk-dev).
const DPDK_VERSION_RANGE: (&str, &str) = ("22.11", "22.12");

/// Packed structs holding aligned members, which Rust rejects (E0588); we never use them.
const OPAQUE_PACKED_TYPES: &[&str] = &[
    "rte_arp_hdr",
    "rte_arp_ipv4",
    "rte_l2tpv2_combined_msg_hdr",
    "rte_gtp_psc_generic_hdr",
];

const ALLOWED_FUNCTIONS: &str = "rte_eal_.*|rte_eth_.*|rte_pktmbuf_.*|rte_mempool_.*|rte_ring_.*\
    |rte_lcore_.*|rte_get_next_lcore|rte_get_main_lcore|rte_strerror|rte_vdev_.*|rte_socket_id\
    |shim_.*";
const ALLOWED_TYPES: &str = "rte_mbuf|rte_mempool|rte_ring|rte_eth_.*|rte_ether_.*|rte_ipv4_hdr\
    |rte_ipv6_hdr|rte_lcore_.*";
const ALLOWED_VARS: &str = "RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_ETHDEV_QUEUE_STAT_CNTRS\
    |RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_.*|RTE_ETH_.*|RTE_ETHER_.*|LCORE_ID_ANY|RING_F_.*\
    |SOCKET_ID_ANY|RTE_MEMPOOL_CACHE_MAX_SIZE";

fn main() {
    let dpdk = pkg_config::Config::new()
        .range_version(DPDK_VERSION_RANGE.0..DPDK_VERSION_RANGE.1)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "dpdk-sys needs DPDK {} development files (Debian: libdpdk-dev; run \
                 scripts/setup.sh): {e}",
                DPDK_VERSION_RANGE.0
            )
        });

    let cflags = pkg_config_cflags();

    let mut shim = cc::Build::new();
    shim.file("shim/shim.c")
        .include("shim")
        .opt_level(3)
        .warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("dpdk_shim");

    let mut builder = bindgen::Builder::default()
        .header("shim/wrapper.h")
        .clang_arg("-Ishim")
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .clang_args(&cflags)
        .allowlist_function(ALLOWED_FUNCTIONS)
        .allowlist_type(ALLOWED_TYPES)
        .allowlist_var(ALLOWED_VARS)
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for ty in OPAQUE_PACKED_TYPES {
        builder = builder.opaque_type(ty);
    }
    let bindings = builder
        .generate()
        .expect("bindgen could not generate the DPDK bindings");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("could not write bindings.rs");

    println!("cargo:rerun-if-changed=shim");
    for path in &dpdk.include_paths {
        println!("cargo:include={}", path.display());
    }
}

/// `pkg-config --cflags libdpdk` as separate flags (the crate's `Library` keeps only include
/// paths and defines, but DPDK also needs `-include rte_config.h` and `-march`).
fn pkg_config_cflags() -> Vec<String> {
    let output = std::process::Command::new(env::var("PKG_CONFIG").unwrap_or("pkg-config".into()))
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config runs");
    assert!(
        output.status.success(),
        "pkg-config --cflags libdpdk failed"
    );
    String::from_utf8(output.stdout)
        .expect("pkg-config prints UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
