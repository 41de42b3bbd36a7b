//! `rprof stat`.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::parse_cpu_list;
use crate::cli::StatArgs;
use crate::record::Target;
use crate::stat::{self, OutputFormat, StatConfig, DEFAULT_EVENTS};

/// The shortest `-I` perf accepts.
const MIN_INTERVAL_MS: u64 = 10;
/// More runs than anyone waits for; keeps `-r` from meaning "forever".
const MAX_REPEAT: u32 = 1_000_000;

fn target(args: &StatArgs) -> Result<Target> {
    super::target_of(
        &args.target,
        &args.command,
        "nothing to count: give a command, or -p PID, -t TID, or -a (e.g. `rprof stat -- ./app args`)",
    )
}

/// Validates the flags into a [`StatConfig`].
pub fn config(args: &StatArgs) -> Result<StatConfig> {
    let lists = if args.events.is_empty() {
        vec![DEFAULT_EVENTS.to_string()]
    } else {
        args.events.clone()
    };
    let groups = stat::parse_counters(&lists).map_err(anyhow::Error::msg)?;
    if args.repeat == 0 || args.repeat > MAX_REPEAT {
        bail!(
            "-r {}: the number of runs must be 1 to {MAX_REPEAT}",
            args.repeat
        );
    }
    let target = target(args)?;
    if args.repeat > 1 && !matches!(target, Target::Launch { .. }) {
        bail!("-r repeats a launched command; with -p, -t, -a or -C count once");
    }
    let interval = match args.interval {
        Some(ms) if ms < MIN_INTERVAL_MS => {
            bail!("-I {ms}: the interval must be at least {MIN_INTERVAL_MS} ms")
        }
        Some(_) if args.repeat > 1 => bail!("-I and -r cannot be used together"),
        Some(ms) => Some(Duration::from_millis(ms)),
        None => None,
    };
    if args.no_aggr && !matches!(target, Target::SystemWide { .. }) {
        bail!("-A (one row per CPU) needs system-wide counting: add -a or -C CPUS");
    }
    let format = match (&args.separator, args.json) {
        (Some(sep), _) if sep.is_empty() => bail!("-x: the separator must not be empty"),
        (Some(sep), _) => OutputFormat::Csv(sep.clone()),
        (None, true) => OutputFormat::Json,
        (None, false) => OutputFormat::Text,
    };
    Ok(StatConfig {
        groups,
        target,
        cpus: args.target.cpu.as_deref().map(parse_cpu_list).transpose()?,
        cpu_text: args.target.cpu.clone(),
        repeat: args.repeat,
        interval,
        per_cpu: args.no_aggr,
        format,
    })
}

/// Runs `rprof stat`; returns the launched command's exit status (0 when
/// nothing was launched).
pub fn run(args: &StatArgs) -> Result<i32> {
    let config = config(args)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    };
    let outcome = stat::run(&config, &mut out)?;
    out.flush()?;
    Ok(outcome.exit_code.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(line: &[&str]) -> StatArgs {
        let mut argv = vec!["rprof", "stat"];
        argv.extend_from_slice(line);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Stat(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_are_perfs_event_set_on_a_launched_command() {
        let cfg = config(&parse(&["--", "true"])).unwrap();
        assert_eq!(cfg.groups.len(), 8);
        assert_eq!(cfg.repeat, 1);
        assert_eq!(cfg.format, OutputFormat::Text);
        assert!(matches!(cfg.target, Target::Launch { .. }));
    }

    #[test]
    fn flags_become_the_config() {
        let cfg = config(&parse(&[
            "-e",
            "task-clock",
            "-e",
            "{cs,page-faults}",
            "-x",
            ";",
            "-a",
            "-A",
            "-I",
            "100",
        ]))
        .unwrap();
        assert_eq!(cfg.groups.len(), 2);
        assert_eq!(cfg.format, OutputFormat::Csv(";".into()));
        assert!(cfg.per_cpu);
        assert_eq!(cfg.interval, Some(Duration::from_millis(100)));
        assert_eq!(cfg.target, Target::SystemWide { argv: None });
        let cfg = config(&parse(&["-j", "-p", "12", "--", "sleep", "1"])).unwrap();
        assert_eq!(cfg.format, OutputFormat::Json);
        assert!(matches!(cfg.target, Target::Pids { .. }));
    }

    #[test]
    fn bad_combinations_are_refused_with_the_flag_named() {
        for (flags, needle) in [
            (&["-r", "0", "--", "true"][..], "-r 0"),
            (&["-I", "1", "--", "true"], "-I 1"),
            (&["-A", "--", "true"], "-A"),
            (&["-e", "nosuch", "--", "true"], "unknown event 'nosuch'"),
            (&["-r", "2", "-I", "100", "--", "true"], "-I and -r"),
            (&["-r", "2", "-a"], "-r repeats"),
            (&[], "nothing to count"),
            (&["-x", "", "--", "true"], "-x"),
        ] {
            let err = config(&parse(flags)).unwrap_err().to_string();
            assert!(err.contains(needle), "{flags:?}: {err}");
        }
        assert!(crate::cli::Cli::try_parse_from(["rprof", "stat", "-x,", "-j", "true"]).is_err());
    }
}
