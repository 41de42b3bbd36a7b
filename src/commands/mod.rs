//! One function per subcommand: validate the flags into stage configs, run
//! the stages, print. Errors are `anyhow` with context; the binary prints
//! the chain.

pub mod diff;
pub mod list;
pub mod progress;
pub mod push_sink;
pub mod record;
pub mod report;
pub mod stat;

use anyhow::{bail, Context, Result};

/// Parses `1,2,3` into numbers, naming the flag on error.
pub fn parse_number_list(flag: &str, text: &str) -> Result<Vec<u32>> {
    let list: Vec<u32> = text
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            part.trim().parse::<u32>().with_context(|| {
                format!("{flag}: '{part}' is not a number (expected e.g. 1234,5678)")
            })
        })
        .collect::<Result<_>>()?;
    if list.is_empty() {
        bail!("{flag}: empty list");
    }
    Ok(list)
}

/// Whom `record` and `stat` watch: `-p`, else `-t`, else the whole system
/// (`-a`/`-C`), else the launched command; a command with `-p`/`-t`/`-a`
/// sets how long. `nothing` is the error when none was given.
pub fn target_of(
    target: &crate::cli::TargetArgs,
    command: &[std::ffi::OsString],
    nothing: &str,
) -> Result<crate::record::Target> {
    use crate::record::Target;
    let argv = (!command.is_empty()).then(|| command.to_vec());
    if let Some(pids) = target.pid.as_deref() {
        return Ok(Target::Pids {
            pids: parse_number_list("-p", pids)?,
            argv,
        });
    }
    if let Some(tids) = target.tid.as_deref() {
        return Ok(Target::Tids {
            tids: parse_number_list("-t", tids)?,
            argv,
        });
    }
    if target.system_wide() {
        return Ok(Target::SystemWide { argv });
    }
    match argv {
        Some(argv) => Ok(Target::Launch { argv }),
        None => bail!("{nothing}"),
    }
}

/// Parses a `-C` CPU list such as `0-3,6`.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>> {
    let cpus = crate::procfs::parse_cpu_list(text)
        .map_err(|e| anyhow::anyhow!("-C {text}: {e} (expected e.g. 0-3,6)"))?;
    if cpus.is_empty() {
        bail!("-C: empty CPU list");
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(parse_cpu_list("0-2,5,1").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn number_lists_name_the_flag() {
        assert_eq!(parse_number_list("-p", "1,22").unwrap(), vec![1, 22]);
        let err = parse_number_list("-p", "1,abc").unwrap_err().to_string();
        assert!(err.contains("-p") && err.contains("abc"), "{err}");
    }
}
