//! What reports say about off-CPU and wall profiles: how switches were
//! sampled (the overhead bound), what was left out, and in a wall profile
//! the on-CPU/off-CPU split.

use super::text;
use crate::aggregate::OffCpuStats;
use crate::event::Sampling;

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    }
}

/// How the switch-outs were sampled, in one sentence.
pub fn sampling_statement(stats: &OffCpuStats) -> String {
    let periods = match (stats.min_period, stats.max_period) {
        (Some(min), max) if min == max => format!("1 in {min}"),
        (Some(min), max) => format!("1 in {min} to 1 in {max}"),
        (None, _) => "none".to_string(),
    };
    let shared = "every switch is timed, so each thread's off-CPU total is measured, not \
                  estimated; it is shared between the thread's sampled stacks by blocked time \
                  times N";
    match stats.sampling {
        Some(Sampling::Period(1)) => "every context switch sampled".to_string(),
        Some(Sampling::Period(n)) => format!("1 in {n} context switches sampled; {shared}"),
        Some(Sampling::Frequency(hz)) => format!(
            "stacks of switches sampled at up to {hz}/s per thread (per CPU system-wide) to \
             bound the overhead ({periods} switches); {shared}"
        ),
        None => format!("sampled {periods} switches"),
    }
}

/// The `# Off-CPU: ...` (and `# Wall: ...`) lines of a report header.
pub fn header_lines(stats: &OffCpuStats) -> Vec<String> {
    let mut lines = vec![
        format!("# Off-CPU: {}", sampling_statement(stats)),
        format!(
            "# Off-CPU: weight = time from a thread's switch-out to its next switch-in \
             (off-cpu/nanoseconds); {} blocked switch-outs, {} still blocked at the end \
             (counted until the last record), {} preempted ones left out (runnable, \
             waiting for a CPU), {} without a switch-in left out",
            stats.blocked, stats.unfinished, stats.preempted, stats.unpaired
        ),
    ];
    if stats.unsampled_threads > 0 {
        lines.push(format!(
            "# Off-CPU: {} threads blocked for {} in all without a sampled switch-out: \
             no stack to give that time, so it is left out (more with --off-cpu-every 1)",
            stats.unsampled_threads,
            text::duration(stats.unsampled_ns)
        ));
    }
    if let Some(split) = wall_split(stats) {
        lines.push(format!("# Wall: {split}"));
    }
    lines
}

/// `on-CPU 1.00s (30.0%), off-CPU 2.33s (70.0%)` for a wall profile.
pub fn wall_split(stats: &OffCpuStats) -> Option<String> {
    let on = stats.on_cpu_ns?;
    let total = on.saturating_add(stats.off_cpu_ns);
    Some(format!(
        "on-CPU {} ({:.1}%), off-CPU {} ({:.1}%)",
        text::duration(on),
        percent(on, total),
        text::duration(stats.off_cpu_ns),
        percent(stats.off_cpu_ns, total)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_states_the_sampling_and_the_wall_split() {
        let stats = OffCpuStats {
            sampling: Some(Sampling::Frequency(1000)),
            sampled: 10,
            blocked: 8,
            preempted: 1,
            unfinished: 1,
            min_period: Some(1),
            max_period: 4,
            off_cpu_ns: 7_000_000_000,
            on_cpu_ns: Some(3_000_000_000),
            ..OffCpuStats::default()
        };
        let lines = header_lines(&stats).join("\n");
        assert!(lines.contains("up to 1000/s per thread"), "{lines}");
        assert!(lines.contains("(1 in 1 to 1 in 4 switches)"), "{lines}");
        assert!(
            lines.contains("each thread's off-CPU total is measured"),
            "{lines}"
        );
        assert!(lines.contains("1 preempted ones left out"), "{lines}");
        assert!(
            lines.contains("# Wall: on-CPU 3.00s (30.0%), off-CPU 7.00s (70.0%)"),
            "{lines}"
        );
        let every = OffCpuStats {
            sampling: Some(Sampling::Period(1)),
            ..OffCpuStats::default()
        };
        assert!(header_lines(&every)[0].contains("every context switch sampled"));
        assert_eq!(
            header_lines(&every).len(),
            2,
            "no wall line without cpu-clock"
        );
    }
}
