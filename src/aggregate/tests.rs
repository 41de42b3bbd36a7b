use super::*;
use crate::abi::context;
use crate::perfdata::records::CpuMode;
use crate::perfdata::{Lost, Mmap};
use crate::process::{ModuleKind, ModuleRef};
use crate::symbolize::Frame;

const APP: u64 = 0x40_0000;

fn cpu_clock() -> Event {
    Event {
        name: "cpu-clock".into(),
        unit: Unit::Nanoseconds,
        samples: 0,
        weight: 0,
    }
}

fn page_faults() -> Event {
    Event {
        name: "page-faults".into(),
        unit: Unit::Faults,
        samples: 0,
        weight: 0,
    }
}

fn builder(events: Vec<Event>) -> ProfileBuilder {
    let attr_event = (0..events.len() as EventId).collect();
    ProfileBuilder::new(events, attr_event, ProfileOptions::default())
}

fn app_mmap(pid: u32) -> Record<'static> {
    Record::Mmap(Mmap {
        cpumode: CpuMode::User,
        pid,
        tid: pid,
        start: APP,
        len: 0x10_0000,
        pgoff: 0,
        filename: "/usr/bin/app".into(),
        prot: crate::perfdata::records::PROT_READ | crate::perfdata::records::PROT_EXEC,
        ..Mmap::default()
    })
}

/// A user sample of `pid` at `time` whose call chain is `chain` (leaf first).
fn sample(attr_index: usize, pid: u32, time: u64, period: u64, chain: &[u64]) -> Record<'static> {
    let mut callchain = vec![context::USER];
    callchain.extend_from_slice(chain);
    Record::Sample(Sample {
        attr_index,
        cpumode: CpuMode::User,
        ip: chain.first().copied().unwrap_or(0),
        pid,
        tid: pid,
        time,
        period,
        callchain: callchain.into(),
        ..Sample::default()
    })
}

fn build(events: Vec<Event>, records: &[Record<'static>]) -> Profile {
    let mut b = builder(events);
    for record in records {
        b.add(record);
    }
    b.finish(Vec::new())
}

#[test]
fn lost_counts_take_the_larger_of_ring_and_final_totals() {
    // perf 6.x: LOST records from the ring, then LOST_SAMPLES with the same total.
    let lost = |n| Lost {
        lost: n,
        ..Lost::default()
    };
    let profile = build(
        vec![cpu_clock()],
        &[
            Record::Lost(lost(3)),
            Record::Lost(lost(4)),
            Record::LostSamples(lost(7)),
            sample(0, 1, 1, 1, &[APP]),
        ],
    );
    assert_eq!(profile.stats.lost, 7);
}

#[test]
fn huge_periods_from_a_file_saturate_instead_of_overflowing() {
    let profile = build(
        vec![cpu_clock()],
        &[
            sample(0, 1, 1, u64::MAX - 10, &[APP]),
            sample(0, 1, 2, u64::MAX - 10, &[APP]),
        ],
    );
    assert_eq!(profile.events[0].weight, u64::MAX);
    assert_eq!(profile.samples[0].weight, u64::MAX);
    let mut out = Vec::new();
    crate::output::Output::write(
        &crate::output::Top::new(Default::default()),
        &profile,
        &mut out,
    )
    .unwrap();
}

#[test]
fn each_event_keeps_its_own_samples_weights_and_unit() {
    // cpu-clock periods are ns, page-fault periods are counts: never summed.
    let profile = build(
        vec![cpu_clock(), page_faults()],
        &[
            app_mmap(7),
            sample(0, 7, 10, 1_000_000, &[APP + 0x10, APP + 0x100]),
            sample(1, 7, 11, 1, &[APP + 0x20, APP + 0x100]),
            sample(0, 7, 12, 1_000_000, &[APP + 0x10, APP + 0x100]),
        ],
    );
    assert_eq!(profile.events.len(), 2);
    assert_eq!(
        (profile.events[0].samples, profile.events[0].weight),
        (2, 2_000_000)
    );
    assert_eq!(
        (profile.events[1].samples, profile.events[1].weight),
        (1, 1)
    );
    assert_eq!(profile.events[1].unit, Unit::Faults);
    let cpu: u64 = profile.samples_of(0).iter().map(|s| s.weight).sum();
    let faults: u64 = profile.samples_of(1).iter().map(|s| s.weight).sum();
    assert_eq!((cpu, faults), (2_000_000, 1));
    // The caller is one location shared by both events' stacks.
    assert_eq!(profile.stacks.len(), 2);
    assert_eq!(profile.locations.len(), 3);
}

#[test]
fn locations_keep_module_relative_addresses_and_the_module_mapping() {
    let profile = build(
        vec![cpu_clock()],
        &[app_mmap(7), sample(0, 7, 10, 1, &[APP + 0x10, APP + 0x100])],
    );
    let stack = profile.stack(profile.samples[0].stack);
    let leaf = profile.location(stack[0]);
    let caller = profile.location(stack[1]);
    assert_eq!(leaf.address, 0x10);
    // A return address is looked up minus one: inside the call instruction.
    assert_eq!(caller.address, 0xff);
    let module = profile.module(leaf.module);
    assert_eq!(module.module.path, "/usr/bin/app");
    assert_eq!(
        module.mapping,
        Some(MappingRange {
            start: APP,
            limit: APP + 0x10_0000,
            offset: 0
        })
    );
}

#[test]
fn samples_keep_thread_and_time_bucket() {
    let mut b = ProfileBuilder::new(
        vec![cpu_clock()],
        vec![0],
        ProfileOptions {
            time_bucket_ns: 100,
            ..ProfileOptions::default()
        },
    );
    b.add(&app_mmap(7));
    for time in [1_000, 1_050, 1_150, 1_420] {
        b.add(&sample(0, 7, time, 1, &[APP]));
    }
    let profile = b.finish(Vec::new());
    assert_eq!(profile.time.origin_ns, 1_000);
    let buckets: Vec<(u32, u64)> = profile
        .samples
        .iter()
        .map(|s| (s.bucket, s.count))
        .collect();
    assert_eq!(buckets, vec![(0, 2), (1, 1), (4, 1)]);
    let thread = profile.thread(profile.samples[0].thread);
    assert_eq!((thread.pid, thread.tid, thread.comm.as_str()), (7, 7, ":7"));
    assert_eq!(profile.stats.duration_ns(), 420);
}

#[test]
fn unnamed_frames_show_module_and_offset_and_long_runs_fold() {
    // Leaf named; then a run of four unnamed frames; then a named root.
    let chain = [
        APP + 0x10,
        APP + 0x2000,
        APP + 0x3000,
        APP + 0x4000,
        APP + 0x5000,
        APP + 0x900,
    ];
    let mut profile = build(
        vec![cpu_clock()],
        &[app_mmap(7), sample(0, 7, 1, 1, &chain)],
    );
    let mut table = SymbolTable::new();
    let id = table.module_id(&profile.modules[0].module);
    let named = |name: &str| Frame {
        function: Some(name.into()),
        file: None,
        line: 0,
        inlined: false,
    };
    table.insert(id, 0x10, vec![named("leaf")]);
    table.insert(id, 0x8ff, vec![named("main")]);
    profile.name_locations(&table);
    let view = profile.named(0);
    let names: Vec<&str> = view.stacks[0]
        .frames
        .iter()
        .map(|&f| view.frame(f).name.as_str())
        .collect();
    assert_eq!(names, vec!["leaf", "app+0x1fff", FOLDED_RUN_NAME, "main"]);

    // Two unnamed frames are not a long run: both stay, each its own address.
    let chain = [APP + 0x10, APP + 0x2000, APP + 0x3000, APP + 0x900];
    let mut profile = build(
        vec![cpu_clock()],
        &[app_mmap(7), sample(0, 7, 1, 1, &chain)],
    );
    profile.name_locations(&table);
    let view = profile.named(0);
    let names: Vec<&str> = view.stacks[0]
        .frames
        .iter()
        .map(|&f| view.frame(f).name.as_str())
        .collect();
    assert_eq!(names, vec!["leaf", "app+0x1fff", "app+0x2fff", "main"]);
}

#[test]
fn stripped_module_hot_addresses_stay_apart() {
    let profile = build(
        vec![cpu_clock()],
        &[
            app_mmap(7),
            sample(0, 7, 1, 1, &[APP + 0x10]),
            sample(0, 7, 2, 1, &[APP + 0x20]),
        ],
    );
    let view = profile.named(0);
    let mut names: Vec<&str> = view.frames.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["app+0x10", "app+0x20"]);
}

fn module(kind: ModuleKind, path: &str) -> ModuleRef {
    ModuleRef {
        kind,
        path: path.to_string(),
        build_id: None,
        pid: None,
    }
}

#[test]
fn missing_from_keeps_only_unanswered_addresses() {
    let mut table = SymbolTable::new();
    let app = module(ModuleKind::Elf, "/bin/app");
    let id = table.module_id(&app);
    table.insert(id, 0x10, vec![]);
    let requests = vec![
        ModuleRequest {
            module: app.clone(),
            addrs: vec![0x10, 0x20],
        },
        ModuleRequest {
            module: module(ModuleKind::Kernel, "[kernel.kallsyms]"),
            addrs: vec![1],
        },
    ];
    let missing = missing_from(&table, requests);
    assert_eq!(missing.len(), 2);
    assert_eq!(missing[0].addrs, vec![0x20]);
    assert_eq!(missing[1].addrs, vec![1]);
}

#[test]
fn inline_frames_expand_innermost_first_and_unknowns_name_the_module() {
    let app = module(ModuleKind::Elf, "/usr/bin/app");
    let frames = vec![
        Frame {
            function: Some("inlined_helper".into()),
            file: None,
            line: 3,
            inlined: true,
        },
        Frame {
            function: Some("outer".into()),
            file: None,
            line: 9,
            inlined: false,
        },
    ];
    let infos = frame_infos(&app, 0x40, &frames);
    assert_eq!(infos.len(), 2);
    assert!(infos[0].inlined && !infos[1].inlined);
    assert_eq!(infos[1].name, "outer");
    let unknown = frame_infos(&app, 0x40, &[]);
    assert_eq!(unknown[0].name, "app+0x40");
    assert!(!unknown[0].resolved);
}

#[test]
fn file_events_take_names_from_the_file_and_merge_equal_ones() {
    use crate::abi::{event_type, software};
    let attr = |config| EventAttr {
        kind: event_type::SOFTWARE,
        config,
        ..EventAttr::default()
    };
    let attrs = [
        attr(software::CPU_CLOCK),
        attr(2),
        attr(software::CPU_CLOCK),
    ];
    let (events, attr_event) = file_events(&attrs, &Metadata::default());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["cpu-clock", "page-faults"]);
    assert_eq!(attr_event, vec![0, 1, 0]);
    let metadata = Metadata {
        event_names: vec!["cpu-clock:u".into(), "faults".into(), "x".into()],
        ..Metadata::default()
    };
    let (events, _) = file_events(&attrs, &metadata);
    assert_eq!(events[0].name, "cpu-clock:u");
    assert_eq!(events[0].unit, Unit::Nanoseconds);
}

/// A DWARF-mode sample: kernel call chain only, user IP/SP/BP and a stack copy.
fn dwarf_sample(pid: u32, ip: u64, sp: u64, bp: u64, stack: Vec<u64>) -> Record<'static> {
    use crate::perfdata::UserRegs;
    // perf's x86 mask: AX..IP and more; BP (6), SP (7), IP (8) are what matter.
    let mask = 0x1ff;
    let mut values = [0u64; 9];
    (values[6], values[7], values[8]) = (bp, sp, ip);
    Record::Sample(Sample {
        cpumode: CpuMode::Kernel,
        ip: 0xffff_ffff_8100_0010,
        pid,
        tid: pid,
        period: 1,
        callchain: vec![context::KERNEL, 0xffff_ffff_8100_0010].into(),
        user_regs: Some(UserRegs {
            abi: crate::perfdata::REGS_ABI_64,
            mask,
            values: values
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect::<Vec<_>>()
                .into(),
        }),
        user_stack: stack
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>()
            .into(),
        ..Sample::default()
    })
}

#[test]
fn dwarf_samples_get_kernel_frames_then_unwound_user_frames() {
    // No unwind sections (the builder's default): the copied stack is walked
    // by frame pointer. bp -> [saved bp 0, return address into the app].
    let sp = 0x7fff_0000;
    let complete = dwarf_sample(7, APP + 0x1000, sp, sp + 0x10, vec![0, 0, 0, APP + 0x2000]);
    // The same, but the copy ends before the frame record: truncated.
    let cut = dwarf_sample(7, APP + 0x1000, sp, sp + 0x10, vec![0, 0]);
    let profile = build(vec![cpu_clock()], &[app_mmap(7), complete, cut]);
    assert_eq!(
        (profile.stats.dwarf_stacks, profile.stats.truncated_stacks),
        (2, 1)
    );
    assert!(profile.stats.has_callchains);
    let stacks: Vec<Vec<(ModuleKind, u64)>> = profile
        .stacks
        .iter()
        .map(|stack| {
            stack
                .iter()
                .map(|&l| {
                    let location = profile.location(l);
                    (
                        profile.module(location.module).module.kind,
                        location.address,
                    )
                })
                .collect()
        })
        .collect();
    let kernel = (ModuleKind::Kernel, 0xffff_ffff_8100_0010);
    assert_eq!(
        stacks,
        [
            // The return address is looked up minus one.
            vec![kernel, (ModuleKind::Elf, 0x1000), (ModuleKind::Elf, 0x1fff)],
            vec![kernel, (ModuleKind::Elf, 0x1000), (ModuleKind::Marker, 0)],
        ]
    );
}

/// A switch record of `tid` at `time`.
fn switch(tid: u32, time: u64, out: bool, preempted: bool) -> Record<'static> {
    Record::Switch(crate::perfdata::Switch {
        out,
        preempted,
        sample_id: crate::perfdata::SampleId {
            pid: Some(tid),
            tid: Some(tid),
            time: Some(time),
            ..Default::default()
        },
    })
}

fn off_cpu_attrs(with_cpu_clock: bool) -> Vec<EventAttr> {
    use crate::event::{CallGraph, EventSpec, Sampling};
    let off = EventSpec::off_cpu(Sampling::Period(1), CallGraph::FramePointer);
    let cpu = EventSpec::cpu_clock(Sampling::Period(1_000), CallGraph::FramePointer);
    let events = if with_cpu_clock {
        vec![cpu, off]
    } else {
        vec![off]
    };
    crate::event::recording_attrs(&events)
}

fn build_from_attrs(attrs: &[EventAttr], records: &[Record<'static>]) -> Profile {
    let (events, attr_event) = file_events(attrs, &Metadata::default());
    let mut b =
        ProfileBuilder::new(events, attr_event, ProfileOptions::default()).off_cpu_attrs(attrs);
    for record in records {
        b.add(record);
    }
    b.finish(Vec::new())
}

#[test]
fn off_cpu_samples_weigh_the_time_until_their_thread_runs_again() {
    let attrs = off_cpu_attrs(false);
    let profile = build_from_attrs(
        &attrs,
        &[
            app_mmap(5),
            // Blocked 4 us at 0x100; preempted at 0x200 (left out); blocked
            // at 0x100 again and still blocked at the last record (9 us).
            sample(0, 5, 1_000, 1, &[APP + 0x100]),
            switch(5, 1_000, true, false),
            switch(5, 5_000, false, false),
            sample(0, 5, 6_000, 1, &[APP + 0x200]),
            switch(5, 6_001, true, true),
            switch(5, 7_000, false, false),
            sample(0, 5, 8_000, 1, &[APP + 0x100]),
            switch(5, 8_000, true, false),
            sample(0, 0, 9_000, 1, &[APP + 0x300]),
            switch(6, 17_000, false, false),
        ],
    );
    assert_eq!(profile.events.len(), 1);
    let event = &profile.events[0];
    assert_eq!(
        (event.name.as_str(), event.unit),
        ("off-cpu", Unit::OffCpuNanoseconds)
    );
    assert_eq!((event.samples, event.weight), (2, 4_000 + 9_000));
    let stats = profile.stats.off_cpu.as_ref().unwrap();
    assert_eq!(
        (stats.blocked, stats.preempted, stats.unfinished),
        (1, 1, 1)
    );
    assert_eq!((stats.off_cpu_ns, stats.on_cpu_ns), (13_000, None));
    // The profile lasts until the last switch record, not the last sample.
    assert_eq!(profile.stats.duration_ns(), 17_000 - 1_000);
    // One stack (0x100) holds it all; the idle task's switch is no thread's.
    let stacks: Vec<StackId> = profile.samples.iter().map(|s| s.stack).collect();
    assert!(
        stacks.iter().all(|&s| s == stacks[0]),
        "{:?}",
        profile.samples
    );
}

#[test]
fn wall_profiles_put_cpu_clock_and_off_cpu_time_in_one_event() {
    let attrs = off_cpu_attrs(true);
    let profile = build_from_attrs(
        &attrs,
        &[
            app_mmap(5),
            sample(0, 5, 1_000, 1_000, &[APP + 0x10]),
            sample(0, 5, 2_000, 1_000, &[APP + 0x10]),
            sample(1, 5, 2_500, 1, &[APP + 0x100]),
            switch(5, 2_500, true, false),
            switch(5, 8_500, false, false),
        ],
    );
    let names: Vec<&str> = profile.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["wall"]);
    assert_eq!(profile.events[0].unit, Unit::Nanoseconds);
    assert_eq!(profile.events[0].weight, 2_000 + 6_000);
    let stats = profile.stats.off_cpu.as_ref().unwrap();
    assert_eq!((stats.on_cpu_ns, stats.off_cpu_ns), (Some(2_000), 6_000));
    assert_eq!(stats.sampling, Some(crate::event::Sampling::Period(1)));
}

#[test]
fn exited_threads_never_start_an_off_cpu_interval() {
    let attrs = off_cpu_attrs(false);
    let exit = Record::Exit(crate::perfdata::TaskEvent {
        pid: 5,
        tid: 5,
        time: 900,
        ..Default::default()
    });
    let profile = build_from_attrs(
        &attrs,
        &[
            app_mmap(5),
            exit,
            sample(0, 5, 1_000, 1, &[APP + 0x100]),
            switch(7, 50_000, false, false),
        ],
    );
    assert_eq!(profile.events[0].weight, 0);
}

/// `sample` in the cgroup of kernel id `cgroup`.
fn in_cgroup(record: Record<'static>, cgroup: u64) -> Record<'static> {
    let Record::Sample(mut s) = record else {
        unreachable!()
    };
    s.cgroup = Some(cgroup);
    Record::Sample(s)
}

#[test]
fn samples_are_grouped_per_cgroup_and_named_by_cgroup_records() {
    let cgroup = |id, path: &str| {
        Record::Cgroup(crate::perfdata::CgroupRecord {
            id,
            path: path.into(),
            ..Default::default()
        })
    };
    let stack = [APP + 0x10, APP + 0x100];
    let profile = build(
        vec![cpu_clock()],
        &[
            app_mmap(7),
            cgroup(100, "/a"),
            // The same thread and stack in two cgroups (it moved): two samples.
            in_cgroup(sample(0, 7, 1, 10, &stack), 100),
            in_cgroup(sample(0, 7, 2, 10, &stack), 200),
            in_cgroup(sample(0, 7, 3, 10, &stack), 100),
            // Named after its samples (records are in time order, the
            // kernel's CGROUP record of a new cgroup may come late).
            cgroup(200, "/b"),
            // A cgroup no record names keeps its id only.
            in_cgroup(sample(0, 7, 4, 10, &stack), 300),
        ],
    );
    let by_cgroup: Vec<(Option<&str>, u64, u64)> = profile
        .samples
        .iter()
        .map(|s| {
            let cgroup = profile.cgroup(s.cgroup.unwrap());
            (cgroup.path.as_deref(), s.count, s.weight)
        })
        .collect();
    assert_eq!(
        by_cgroup,
        [(Some("/a"), 2, 20), (Some("/b"), 1, 10), (None, 1, 10)]
    );
    assert_eq!(profile.cgroups.len(), 3);
    assert_eq!(profile.cgroups[2].id, 300);
    assert_eq!(profile.events[0].samples, 4);

    // Without cgroup ids: no cgroups, one sample as before.
    let plain = build(
        vec![cpu_clock()],
        &[
            app_mmap(7),
            sample(0, 7, 1, 10, &stack),
            sample(0, 7, 2, 10, &stack),
        ],
    );
    assert!(plain.cgroups.is_empty());
    assert_eq!(plain.samples.len(), 1);
    assert_eq!(plain.samples[0].cgroup, None);
}
