//! The encoding, on hand-built profiles (no kernel, no files).

use std::collections::HashSet;
use std::sync::Arc;

use super::*;
use crate::aggregate::{
    Cgroup, MappingRange, Module, OffCpuStats, RecordingStats, StackSample, Thread, TimeBuckets,
};
use crate::process::ModuleRef;
use crate::symbolize::Frame;

fn frame(name: &str, file: Option<&str>, line: u32, inlined: bool) -> Frame {
    Frame {
        function: Some(name.into()),
        file: file.map(Into::into),
        line,
        inlined,
    }
}

fn module(kind: ModuleKind, path: &str, mapping: Option<MappingRange>) -> Module {
    Module {
        module: ModuleRef {
            kind,
            path: path.into(),
            build_id: (kind == ModuleKind::Elf).then(|| vec![0xab, 0xcd, 0x01]),
            pid: None,
        },
        mapping,
    }
}

fn sample(
    event: EventId,
    stack: u32,
    thread: u32,
    bucket: u32,
    count: u64,
    weight: u64,
) -> StackSample {
    StackSample {
        event,
        stack,
        thread,
        cgroup: None,
        bucket,
        count,
        weight,
    }
}

/// /bin/app mapped at 0x55000000 from file offset 0x1000: main -> a (with
/// `helper` inlined) and main -> b -> the kernel; two threads of pid 7, the
/// main one renamed by exec; one stack cut short (`[truncated]`).
fn profile() -> Profile {
    let location = |module, address, frames: Vec<Frame>| Location {
        module,
        address,
        frames: Arc::from(frames),
    };
    Profile {
        events: vec![Event {
            name: "cpu-clock".into(),
            unit: Unit::Nanoseconds,
            samples: 13,
            weight: 130,
        }],
        modules: vec![
            module(
                ModuleKind::Elf,
                "/bin/app",
                Some(MappingRange {
                    start: 0x5500_0000,
                    limit: 0x5500_4000,
                    offset: 0x1000,
                }),
            ),
            module(ModuleKind::Kernel, "[kernel.kallsyms]", None),
            module(ModuleKind::Marker, "[truncated]", None),
        ],
        locations: vec![
            location(0, 0x1010, vec![frame("main", Some("app.c"), 3, false)]),
            location(
                0,
                0x1020,
                vec![
                    frame("helper", Some("app.h"), 9, true),
                    frame("a", Some("app.c"), 12, false),
                ],
            ),
            location(0, 0x1030, vec![frame("b", Some("app.c"), 20, false)]),
            location(
                1,
                0xffff_ffff_8100_0010,
                vec![frame("do_syscall_64", None, 0, false)],
            ),
            location(1, 0xffff_ffff_8100_0400, vec![]),
            location(2, 0, vec![]),
        ],
        // Leaf first.
        stacks: vec![
            Box::from([1, 0]),
            Box::from([3, 4, 2, 0]),
            Box::from([2, 5]),
        ],
        threads: vec![
            Thread {
                pid: 7,
                tid: 7,
                comm: "rprof".into(),
            },
            Thread {
                pid: 7,
                tid: 8,
                comm: "worker".into(),
            },
            Thread {
                pid: 7,
                tid: 7,
                comm: "app".into(),
            },
        ],
        cgroups: Vec::new(),
        samples: vec![
            sample(0, 0, 1, 0, 2, 20),
            sample(0, 0, 1, 1, 4, 40),
            sample(0, 0, 2, 0, 3, 30),
            sample(0, 1, 2, 1, 3, 30),
            sample(0, 2, 1, 1, 1, 10),
        ],
        time: TimeBuckets {
            origin_ns: 0,
            bucket_ns: 1_000_000_000,
        },
        stats: RecordingStats {
            first_time: Some(1_000),
            last_time: Some(2_000_001_000),
            has_callchains: true,
            ..RecordingStats::default()
        },
        warnings: Vec::new(),
    }
}

fn encode(pprof: &Pprof, profile: &Profile) -> proto::Profile {
    let mut out = Vec::new();
    pprof.write(profile, &mut out).unwrap();
    assert_eq!(&out[..2], &[0x1f, 0x8b], "gzip on disk");
    decode(&out).unwrap()
}

fn string(p: &proto::Profile, index: i64) -> &str {
    &p.string_table[index as usize]
}

fn types(p: &proto::Profile) -> Vec<String> {
    p.sample_type
        .iter()
        .map(|t| format!("{}/{}", string(p, t.r#type), string(p, t.unit)))
        .collect()
}

fn function_names(p: &proto::Profile, location: u64) -> Vec<String> {
    let location = p.location.iter().find(|l| l.id == location).unwrap();
    location
        .line
        .iter()
        .map(|line| {
            let f = p
                .function
                .iter()
                .find(|f| f.id == line.function_id)
                .unwrap();
            string(p, f.name).to_string()
        })
        .collect()
}

fn label_str(p: &proto::Profile, sample: &proto::Sample, key: &str) -> Option<String> {
    sample
        .label
        .iter()
        .find(|l| string(p, l.key) == key && l.str != 0)
        .map(|l| string(p, l.str).to_string())
}

fn label_num(p: &proto::Profile, sample: &proto::Sample, key: &str) -> Option<i64> {
    sample
        .label
        .iter()
        .find(|l| string(p, l.key) == key && l.str == 0)
        .map(|l| l.num)
}

/// The invariants every pprof reader relies on (docs anchors.md).
pub(crate) fn check_invariants(p: &proto::Profile) {
    assert_eq!(p.string_table.first().map(String::as_str), Some(""));
    let strings = p.string_table.len() as i64;
    let unique = |ids: Vec<u64>, what: &str| {
        assert!(ids.iter().all(|&id| id != 0), "{what} id 0");
        let set: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len(), "{what} ids repeat");
        set
    };
    let mappings = unique(p.mapping.iter().map(|m| m.id).collect(), "mapping");
    let locations = unique(p.location.iter().map(|l| l.id).collect(), "location");
    let functions = unique(p.function.iter().map(|f| f.id).collect(), "function");
    for sample in &p.sample {
        assert_eq!(sample.value.len(), p.sample_type.len());
        assert!(!sample.location_id.is_empty());
        assert!(sample.location_id.iter().all(|id| locations.contains(id)));
        for label in &sample.label {
            assert!(label.key > 0 && label.key < strings && label.str < strings);
        }
    }
    for location in &p.location {
        assert!(location.mapping_id == 0 || mappings.contains(&location.mapping_id));
        assert!(location
            .line
            .iter()
            .all(|l| functions.contains(&l.function_id)));
        if let Some(m) = p.mapping.iter().find(|m| m.id == location.mapping_id) {
            assert!(
                m.memory_start <= location.address && location.address < m.memory_limit,
                "location {location:?} outside {m:?}"
            );
        }
    }
    for f in &p.function {
        assert!(f.name < strings && f.system_name < strings && f.filename < strings);
    }
    for t in &p.sample_type {
        assert!(t.r#type > 0 && t.unit > 0);
    }
    assert!(p.default_sample_type < strings);
}

#[test]
fn cpu_profile_has_go_cpu_types_period_and_invariants() {
    let pprof = Pprof {
        sampling: vec![Some(Sampling::Frequency(4000))],
        start: Some((1_700_000_000_000_000_000, StartTimeSource::ClockData)),
        ..Pprof::default()
    };
    let p = encode(&pprof, &profile());
    check_invariants(&p);
    assert_eq!(types(&p), ["samples/count", "cpu/nanoseconds"]);
    assert_eq!(string(&p, p.default_sample_type), "cpu");
    let period_type = p.period_type.unwrap();
    assert_eq!(
        (string(&p, period_type.r#type), string(&p, period_type.unit)),
        ("cpu", "nanoseconds")
    );
    assert_eq!(p.period, 250_000, "1e9 / 4000 Hz");
    assert_eq!(p.time_nanos, 1_700_000_000_000_000_000);
    assert_eq!(p.duration_nanos, 2_000_000_000);
    // Totals are the model's.
    let total = |i: usize| p.sample.iter().map(|s| s.value[i]).sum::<i64>();
    assert_eq!((total(0), total(1)), (13, 130));

    // Linux perf names its default event with modifiers.
    let mut perfs = profile();
    perfs.events[0].name = "cpu-clock:ppp".into();
    let p = encode(&pprof, &perfs);
    assert_eq!(types(&p), ["samples/count", "cpu/nanoseconds"]);
}

#[test]
fn samples_merge_time_buckets_per_stack_and_thread_with_labels() {
    let p = encode(&Pprof::default(), &profile());
    // (stack 0, tid 8) in two buckets became one sample; tid 7 has its own.
    assert_eq!(p.sample.len(), 4);
    let first = &p.sample[0];
    assert_eq!(first.value, [6, 60]);
    assert_eq!(first.location_id, [2, 1], "leaf first, ids = model ids + 1");
    assert_eq!(label_num(&p, first, "pid"), Some(7));
    assert_eq!(label_num(&p, first, "tid"), Some(8));
    assert_eq!(
        label_str(&p, first, "thread_comm").as_deref(),
        Some("worker")
    );
    // The process is named after its main thread's latest name.
    assert_eq!(label_str(&p, first, "comm").as_deref(), Some("app"));
    assert_eq!(
        label_str(&p, first, "event"),
        None,
        "one event: no event label"
    );
    let main_thread = &p.sample[1];
    assert_eq!(label_num(&p, main_thread, "tid"), Some(7));
    assert_eq!(
        label_str(&p, main_thread, "thread_comm").as_deref(),
        Some("app")
    );
}

#[test]
fn samples_of_each_cgroup_are_apart_and_labelled_with_its_path_or_id() {
    let profile_without_cgroups = profile();
    let mut profile = profile();
    profile.cgroups = vec![
        Cgroup {
            id: 100,
            path: Some("/system.slice/nginx.service".into()),
        },
        Cgroup {
            id: 1 << 40,
            path: None,
        },
    ];
    // (stack 0, tid 8) in bucket 0 ran in one cgroup, in bucket 1 in the
    // other: two samples now, not one.
    profile.samples[0].cgroup = Some(0);
    profile.samples[1].cgroup = Some(1);
    for s in &mut profile.samples[2..] {
        s.cgroup = Some(0);
    }
    let p = encode(&Pprof::default(), &profile);
    check_invariants(&p);
    assert_eq!(p.sample.len(), 5);
    let (a, b) = (&p.sample[0], &p.sample[1]);
    assert_eq!((a.value[1], b.value[1]), (20, 40));
    assert_eq!(
        label_str(&p, a, "cgroup").as_deref(),
        Some("/system.slice/nginx.service")
    );
    assert_eq!(label_num(&p, a, "cgroup_id"), None);
    assert_eq!(label_str(&p, b, "cgroup"), None);
    assert_eq!(label_num(&p, b, "cgroup_id"), Some(1 << 40));
    // Without cgroup ids, no cgroup labels.
    let plain = encode(&Pprof::default(), &profile_without_cgroups);
    assert!(plain
        .sample
        .iter()
        .all(|s| label_str(&plain, s, "cgroup").is_none()
            && label_num(&plain, s, "cgroup_id").is_none()));
}

#[test]
fn locations_are_process_addresses_with_inline_frames_innermost_first() {
    let p = encode(&Pprof::default(), &profile());
    let location = |id: u64| p.location.iter().find(|l| l.id == id).unwrap();
    // File offset 0x1020 in a mapping of offset 0x1000 at 0x55000000.
    assert_eq!(location(2).address, 0x5500_0020);
    assert_eq!(function_names(&p, 2), ["helper", "a"]);
    let line = &location(2).line;
    assert_eq!((line[0].line, line[1].line), (9, 12));
    let helper = p
        .function
        .iter()
        .find(|f| string(&p, f.name) == "helper")
        .unwrap();
    assert_eq!(string(&p, helper.filename), "app.h");
    assert_eq!(helper.system_name, helper.name);
    // Kernel addresses stay as they are; an unnamed one has no line.
    assert_eq!(location(4).address, 0xffff_ffff_8100_0010);
    assert_eq!(function_names(&p, 4), ["do_syscall_64"]);
    assert!(location(5).line.is_empty());
    // The marker is a function of its own, in no mapping.
    assert_eq!(location(6).mapping_id, 0);
    assert_eq!(function_names(&p, 6), ["[truncated]"]);
}

#[test]
fn one_mapping_per_module_with_build_id_and_honest_flags() {
    let p = encode(&Pprof::default(), &profile());
    assert_eq!(p.mapping.len(), 2, "app and kernel; the marker has none");
    let app = &p.mapping[0];
    assert_eq!(string(&p, app.filename), "/bin/app");
    assert_eq!(string(&p, app.build_id), "abcd01");
    assert_eq!(
        (app.memory_start, app.memory_limit, app.file_offset),
        (0x5500_0000, 0x5500_4000, 0x1000)
    );
    assert!(app.has_functions && app.has_filenames && app.has_line_numbers);
    assert!(app.has_inline_frames);
    let kernel = &p.mapping[1];
    assert_eq!(string(&p, kernel.filename), "[kernel.kallsyms]");
    assert_eq!(string(&p, kernel.build_id), "");
    assert_eq!(
        (kernel.memory_start, kernel.memory_limit),
        (0xffff_ffff_8100_0010, 0xffff_ffff_8100_0401)
    );
    assert!(kernel.has_functions);
    assert!(!kernel.has_filenames && !kernel.has_line_numbers && !kernel.has_inline_frames);
}

#[test]
fn mapping_grows_to_cover_locations_before_the_first_mapping() {
    let mut profile = profile();
    // Code at file offset 0x800, below the first mapping's offset.
    profile.locations[0].address = 0x800;
    let p = encode(&Pprof::default(), &profile);
    check_invariants(&p);
    let app = &p.mapping[0];
    assert_eq!((app.memory_start, app.file_offset), (0x54ff_f800, 0x800));
    let main = p.location.iter().find(|l| l.id == 1).unwrap();
    assert_eq!(main.address, 0x54ff_f800);
}

#[test]
fn several_events_get_a_column_each_and_an_event_label() {
    let mut profile = profile();
    profile.events.push(Event {
        name: "page-faults".into(),
        unit: Unit::Faults,
        samples: 2,
        weight: 6,
    });
    profile.samples.push(sample(1, 2, 0, 0, 2, 6));
    let pprof = Pprof {
        sampling: vec![Some(Sampling::Period(1_000_000)), Some(Sampling::Period(3))],
        ..Pprof::default()
    };
    let p = encode(&pprof, &profile);
    check_invariants(&p);
    assert_eq!(
        types(&p),
        ["samples/count", "cpu/nanoseconds", "page-faults/count"]
    );
    assert_eq!(string(&p, p.default_sample_type), "cpu");
    assert_eq!(p.period, 1_000_000);
    let faults: Vec<&proto::Sample> = p
        .sample
        .iter()
        .filter(|s| label_str(&p, s, "event").as_deref() == Some("page-faults"))
        .collect();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].value, [2, 0, 6]);
    let cpu = p
        .sample
        .iter()
        .filter(|s| label_str(&p, s, "event").as_deref() == Some("cpu-clock"));
    assert!(cpu.clone().all(|s| s.value[2] == 0));
    assert_eq!(cpu.map(|s| s.value[1]).sum::<i64>(), 130);

    // --event picks one: its columns only, it is the default.
    let only = Pprof {
        event: Some(1),
        sampling: pprof.sampling.clone(),
        ..Pprof::default()
    };
    let p = encode(&only, &profile);
    check_invariants(&p);
    assert_eq!(types(&p), ["samples/count", "page-faults/count"]);
    assert_eq!(string(&p, p.default_sample_type), "page-faults");
    let period_type = p.period_type.unwrap();
    assert_eq!(string(&p, period_type.r#type), "page-faults");
    assert_eq!(p.period, 3);
    assert_eq!(p.sample.len(), 1);
}

#[test]
fn off_cpu_profile_weighs_in_off_cpu_nanoseconds() {
    let mut profile = profile();
    profile.events = vec![Event {
        name: OFF_CPU_EVENT.into(),
        unit: Unit::OffCpuNanoseconds,
        samples: 13,
        weight: 130,
    }];
    profile.stats.off_cpu = Some(OffCpuStats {
        sampling: Some(Sampling::Period(4)),
        ..OffCpuStats::default()
    });
    let pprof = Pprof {
        sampling: vec![Some(Sampling::Period(4))],
        ..Pprof::default()
    };
    let p = encode(&pprof, &profile);
    check_invariants(&p);
    assert_eq!(types(&p), ["samples/count", "off-cpu/nanoseconds"]);
    assert_eq!(string(&p, p.default_sample_type), "off-cpu");
    let period_type = p.period_type.unwrap();
    assert_eq!(
        (string(&p, period_type.r#type), string(&p, period_type.unit)),
        ("switches", "count")
    );
    assert_eq!(p.period, 4);

    // A wall profile: one event in ns.
    profile.events[0].name = WALL_EVENT.into();
    profile.events[0].unit = Unit::Nanoseconds;
    let p = encode(
        &Pprof {
            sampling: vec![Some(Sampling::Frequency(1000))],
            ..Pprof::default()
        },
        &profile,
    );
    assert_eq!(types(&p), ["samples/count", "wall/nanoseconds"]);
    assert_eq!(p.period, 1_000_000);
}

#[test]
fn frequency_sampled_counters_state_their_mean_period() {
    let mut profile = profile();
    profile.events[0] = Event {
        name: "cycles".into(),
        unit: Unit::Events,
        samples: 13,
        weight: 13_000,
    };
    let p = encode(
        &Pprof {
            sampling: vec![Some(Sampling::Frequency(4000))],
            ..Pprof::default()
        },
        &profile,
    );
    assert_eq!(types(&p), ["samples/count", "cycles/count"]);
    assert_eq!(p.period, 1000);
}

#[test]
fn empty_profile_is_still_a_valid_profile() {
    let mut profile = profile();
    profile.samples.clear();
    let p = encode(&Pprof::default(), &profile);
    check_invariants(&p);
    assert!(p.sample.is_empty() && p.location.is_empty() && p.mapping.is_empty());
    assert_eq!(types(&p), ["samples/count", "cpu/nanoseconds"]);
}

#[test]
fn decode_reads_raw_protobuf_and_refuses_garbage() {
    let built = Pprof::default().build(&profile());
    let raw = built.encode_to_vec();
    assert_eq!(decode(&raw).unwrap(), built);
    assert!(matches!(
        decode(&[0x1f, 0x8b, 0x08, 0x00, 0x01]),
        Err(PprofError::Gzip(_))
    ));
    assert!(matches!(
        decode(&[0xff, 0xff, 0xff]),
        Err(PprofError::Decode(_))
    ));
    // A gzip stream that inflates past the limit is refused, not read.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &vec![0u8; 4096]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(matches!(
        super::decode_within(&bomb, 1024),
        Err(PprofError::TooLarge { limit: 1024 })
    ));
}

#[test]
fn jit_code_gets_a_mapping_that_readers_do_not_try_to_symbolize() {
    let mut profile = profile();
    profile
        .modules
        .push(module(ModuleKind::Jit, "/tmp/perf-7.map", None));
    profile.locations.push(Location {
        module: 3,
        address: 0x7f00_0000_1000,
        frames: Arc::from(Vec::new()),
    });
    profile.stacks.push(Box::from([6, 0]));
    profile.samples.push(sample(0, 3, 0, 0, 1, 10));
    let p = encode(&Pprof::default(), &profile);
    check_invariants(&p);
    let jit = p
        .mapping
        .iter()
        .find(|m| string(&p, m.filename) == "/tmp/perf-7.map")
        .unwrap();
    assert_eq!(
        (jit.memory_start, jit.memory_limit, jit.file_offset),
        (0x7f00_0000_1000, 0x7f00_0000_1001, 0)
    );
    assert!(jit.has_functions, "nothing left to symbolize from a file");
    assert_eq!(p.mapping[0].id, 1);
    assert_eq!(
        string(&p, p.mapping[0].filename),
        "/bin/app",
        "main binary first"
    );
}
