//! Generates the tonic/prost code with a vendored protoc: no system protoc needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    config.bytes(["."]);
    // Our codec: prost messages encoded through a scratch Vec (see src/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::codec::FastCodec")
        .compile_with_config(config, &["proto/zk.proto", "proto/peer.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
