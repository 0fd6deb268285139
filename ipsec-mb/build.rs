//! Generates the bindings to the system's intel-ipsec-mb (Debian 12: libipsec-mb-dev 1.3) with
//! bindgen and links the shared library. The library's API is function pointers in its manager
//! structure (`IMB_MGR`), selected at run time for the CPU, so no C shim is needed.

use std::env;
use std::path::PathBuf;

const HEADER: &str = "/usr/include/intel-ipsec-mb.h";

fn main() {
    assert!(
        std::path::Path::new(HEADER).exists(),
        "ipsec-mb needs {HEADER} (Debian: libipsec-mb-dev; run scripts/setup.sh)"
    );
    let bindings = bindgen::Builder::default()
        .header(HEADER)
        .allowlist_function("alloc_mb_mgr|free_mb_mgr|init_mb_mgr_auto|init_mb_mgr_sse|imb_get_version|imb_get_version_str|imb_get_errno|imb_get_strerror")
        .allowlist_type("IMB_MGR|IMB_JOB|IMB_ARCH|gcm_key_data|gcm_context_data|IMB_STATUS|IMB_CIPHER_MODE|IMB_CIPHER_DIRECTION|IMB_HASH_ALG|IMB_CHAIN_ORDER|IMB_KEY_SIZE_BYTES")
        .allowlist_var("IMB_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen could not generate the intel-ipsec-mb bindings");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings.write_to_file(out.join("bindings.rs")).expect("could not write bindings.rs");
    println!("cargo:rustc-link-lib=dylib=IPSec_MB");
    println!("cargo:rerun-if-changed={HEADER}");
}
