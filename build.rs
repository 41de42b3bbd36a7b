//! Generates the pprof types (`rprof::output::pprof::proto`) from
//! `proto/profile.proto` and Parca's WriteRaw messages
//! (`rprof::push::parca_proto`) from `proto/parca_profilestore.proto`, and
//! Pyroscope's push API (`rprof::push::pyroscope_proto`) from
//! `proto/pyroscope_push.proto`.
//! protox compiles the schemas in Rust, so a build needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const SCHEMAS: [&str; 3] = [
        "proto/profile.proto",
        "proto/parca_profilestore.proto",
        "proto/pyroscope_push.proto",
    ];
    for schema in SCHEMAS {
        println!("cargo:rerun-if-changed={schema}");
    }
    let descriptors = protox::compile(SCHEMAS, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
