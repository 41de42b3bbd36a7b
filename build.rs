//! Generates the pprof types (`rprof::output::pprof::proto`) from
//! `proto/profile.proto`. protox compiles the schema in Rust, so a build
//! needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const SCHEMA: &str = "proto/profile.proto";
    println!("cargo:rerun-if-changed={SCHEMA}");
    let descriptors = protox::compile([SCHEMA], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
