//! Whom `record` and `stat` watch: the same -p/-t/-a/-C flags, flattened
//! into both (resolved by `commands::target_of`).

use clap::Args;

#[derive(Debug, Default, Args)]
pub struct TargetArgs {
    /// These processes (comma-separated), with all their threads.
    #[arg(short = 'p', long = "pid", value_name = "PID[,PID...]", conflicts_with_all = ["tid", "all_cpus"])]
    pub pid: Option<String>,

    /// These threads only (comma-separated).
    #[arg(
        short = 't',
        long = "tid",
        value_name = "TID[,TID...]",
        conflicts_with = "all_cpus"
    )]
    pub tid: Option<String>,

    /// Every process on every CPU (system-wide).
    #[arg(short = 'a', long = "all-cpus")]
    pub all_cpus: bool,

    /// Only these CPUs, e.g. `0-3,6` (system-wide unless -p or -t is given).
    #[arg(short = 'C', long = "cpu", value_name = "CPUS")]
    pub cpu: Option<String>,
}

impl TargetArgs {
    /// `-a`, or `-C` (which implies it).
    pub fn system_wide(&self) -> bool {
        self.all_cpus || self.cpu.is_some()
    }
}
