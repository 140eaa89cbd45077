// The build script of every crate whose tests come in tiers (included by
// master/build.rs and volume-uring/build.rs; see testkit::tier).
fn main() {
    println!("cargo:rustc-check-cfg=cfg(mkv_all_tests)");
    println!("cargo:rerun-if-env-changed=MKV_ALL_TESTS");
    if std::env::var_os("MKV_ALL_TESTS").is_some_and(|v| v == "1") {
        println!("cargo:rustc-cfg=mkv_all_tests");
    }
}
