//! `rprof list`: the events this machine offers.

use std::io::Write;

use anyhow::Result;

use crate::abi::{event_type, flag, EventAttr};
use crate::cli::args::ListArgs;
use crate::event::list::{entries, render, HardwarePmu};
use crate::event::EventSources;
use crate::sys::{PerfEvent, SysError};

/// Whether a hardware PMU counts cycles for this thread: one
/// perf_event_open of a disabled, user-only cycles counter (allowed at any
/// paranoid level), closed at once.
pub fn probe_hardware_pmu() -> HardwarePmu {
    let attr = EventAttr {
        kind: event_type::HARDWARE,
        config: 0,
        flags: flag::DISABLED | flag::EXCLUDE_KERNEL | flag::EXCLUDE_HV,
        ..EventAttr::default()
    };
    match PerfEvent::open(&attr, 0, -1) {
        Err(SysError::EventUnsupported { .. }) => HardwarePmu::Absent,
        // Opened, or refused for another reason (permissions): not known to be missing.
        _ => HardwarePmu::Present,
    }
}

pub fn run(args: &ListArgs) -> Result<()> {
    let listing = entries(&EventSources::system(), probe_hardware_pmu());
    let text = render(&listing, args.filter.as_deref());
    let mut out = std::io::stdout().lock();
    if text.is_empty() {
        if let Some(filter) = &args.filter {
            writeln!(out, "no event matches '{filter}'")?;
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_answers_without_panicking() {
        let _ = probe_hardware_pmu();
    }
}
