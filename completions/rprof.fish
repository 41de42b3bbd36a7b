# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rprof_global_optspecs
    string join \n h/help V/version
end

function __fish_rprof_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rprof_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rprof_using_subcommand
    set -l cmd (__fish_rprof_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rprof -n "__fish_rprof_needs_command" -s h -l help -d 'Print help'
complete -c rprof -n "__fish_rprof_needs_command" -s V -l version -d 'Print version'
complete -c rprof -n "__fish_rprof_needs_command" -f -a "record" -d 'Record samples of a command, processes, threads or the whole system'
complete -c rprof -n "__fish_rprof_needs_command" -f -a "report" -d 'Turn a recording (rprof\'s or Linux perf\'s) into a table, call tree, folded stacks, a flame graph or a pprof profile'
complete -c rprof -n "__fish_rprof_needs_command" -f -a "stat" -d 'Count events (no sampling) over a command, processes or CPUs, like `perf stat`'
complete -c rprof -n "__fish_rprof_needs_command" -f -a "diff" -d 'Compare two profiles (recordings, folded stacks or pprof): what grew or shrank, and whether the change is more than noise'
complete -c rprof -n "__fish_rprof_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c rprof -n "__fish_rprof_needs_command" -f -a "list" -d 'List the events this machine offers for `record -e`: software, hardware (marked when the PMU is missing), hardware cache, PMU and tracepoint events'
complete -c rprof -n "__fish_rprof_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rprof -n "__fish_rprof_using_subcommand record" -s F -l freq -d 'Sampling frequency in Hz per CPU, or `max` (default 4000; clamped to kernel.perf_event_max_sample_rate)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -s c -l count -d 'Sample every PERIOD events instead (nanoseconds for cpu-clock; below 2^63)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -s e -l event -d 'Events to sample (repeatable, comma-separated; `{a,b}` opens a group): software (cpu-clock, task-clock, page-faults, minor-faults, major-faults, context-switches, cpu-migrations, ...), hardware (cycles, instructions, branch-misses, L1-dcache-load-misses, LLC-loads, ...: these need a hardware PMU, which VMs usually lack), raw `rNNNN`, PMU terms `pmu/event=0x3c,umask=0/`, a PMU\'s named events, and tracepoints `subsys:name` (globs like `sched:*` open every match). Modifiers `:u :k :h` (only these privilege levels) and `:p :pp :ppp` (precision). Terms `EVENT/period=N/`, `/freq=HZ/`, `/name=NAME/` set one event\'s own sampling (kept over -F/-c) or name. Tracepoints record every hit unless -F/-c is given; other events sample at -F. `rprof list` shows what this machine has [default: cpu-clock]' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l filter -d 'Filter for the tracepoint of the -e just before it, in the kernel\'s filter syntax over the tracepoint\'s fields (e.g. `--filter \'prev_pid == 1\'`; `rprof report --format script` shows the fields)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l call-graph -d 'Call-chain mode: `fp` (frame pointers), or `dwarf[,SIZE]`: copy the user registers and the top SIZE bytes of the user stack per sample (default 8192, at most 65528), for code built without frame pointers; when the recording stops, the stacks are unwound with the binaries\' DWARF CFI and the file keeps only the call chains' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -s p -l pid -d 'These processes (comma-separated), with all their threads' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -s t -l tid -d 'These threads only (comma-separated)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -s C -l cpu -d 'Only these CPUs, e.g. `0-3,6` (system-wide unless -p or -t is given)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l duration -d 'Stop after this many seconds (fractions allowed)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -s o -l output -d 'Output file, a regular file path (an existing one is kept as FILE.old), or `-` for a pipe-mode stream on standard output (`perf record -o -`\'s format; a launched command\'s output then goes to standard error)' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand record" -l rotate -d 'Continuous recording: write one complete recording per interval, ending after a time (`60s`, `5m`, `1h`, `500ms`) or once the file holds SIZE bytes of records (`100M`, `1G`; M is MiB, m minutes). -o then names a directory (`-o DIR/`, created 0700 if missing) or a file prefix; files are `rprof-YYYYmmddTHHMMSSZ-NNNN.data` (UTC start, sequence), each renamed into place once finished. SIGHUP starts a new file' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l keep -d 'With --rotate: keep only the newest N interval files in the directory, deleting older ones (only names rprof gives them)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l push -d 'Send each interval\'s profile (needs --rotate) to this server: a Pyroscope base URL (http://pyroscope:4040) or a Parca one (http://parca:7070). Profiles wait in the spool while the server is unreachable. Without --keep, the 10 newest interval files are kept' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l push-format -d 'The server\'s protocol [default: pyroscope]' -r -f -a "pyroscope\t'Grafana Pyroscope: HTTP /ingest, format=pprof'
pyroscope-push\t'Grafana Pyroscope\'s push API: push.v1.PusherService/Push (Connect), as Grafana Alloy sends'
parca\t'Parca: ProfileStoreService/WriteRaw over gRPC-Web'"
complete -c rprof -n "__fish_rprof_using_subcommand record" -l label -d 'Series labels K=V, comma-separated; repeatable. service_name defaults to the recorded command\'s name' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l spool-dir -d 'Where profiles wait to be sent [default: /var/spool/rprof as root, else $XDG_STATE_HOME/rprof/spool or ~/.local/state/rprof/spool]' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand record" -l spool-max -d 'The spool\'s size cap (K, M, G: KiB, MiB, GiB); past it the oldest profiles are dropped [default: 256M]' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l push-token-file -d 'Read a bearer token from FILE (else $RPROF_PUSH_TOKEN)' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand record" -l push-basic-auth-file -d 'Read `user:password` for basic auth from FILE (else $RPROF_PUSH_USER and $RPROF_PUSH_PASSWORD)' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand record" -l push-timeout -d 'Give up one request after SECS seconds (it is retried) [default: 10]' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l push-ca-file -d 'Trust the CA certificates in FILE (PEM) besides the built-in (Mozilla\'s) roots: for an https server under a private CA' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand record" -s m -l mmap-pages -d 'Ring buffer size per CPU in pages (a power of two). Without root, it is shrunk (with a warning) to fit the locked-memory limit' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l off-cpu-freq -d 'With --off-cpu/--wall: sample switch-outs at most about HZ times a second per thread (per CPU with -a); the kernel then samples the stacks of 1 in N switches. Every switch is still timed: each thread\'s off-CPU total is measured and shared between its sampled stacks [default: 1000]' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -l off-cpu-every -d 'With --off-cpu/--wall: sample the stack of every Nth switch-out instead (1: all)' -r
complete -c rprof -n "__fish_rprof_using_subcommand record" -s g -d 'Record call chains (frame pointers); same as --call-graph fp'
complete -c rprof -n "__fish_rprof_using_subcommand record" -s a -l all-cpus -d 'Every process on every CPU (system-wide)'
complete -c rprof -n "__fish_rprof_using_subcommand record" -s v -l verbose -d 'Print a line per finished interval file (with --rotate)'
complete -c rprof -n "__fish_rprof_using_subcommand record" -l off-cpu -d 'Off-CPU profile: sample the stacks where threads switch out and weight each by the time until the thread runs again (unit off-cpu/nanoseconds). Preempted switch-outs (the thread was still runnable) are left out; a thread still blocked when the recording stops counts until the end. Use with -g or --call-graph dwarf'
complete -c rprof -n "__fish_rprof_using_subcommand record" -l wall -d 'Wall-clock profile: cpu-clock samples (-F/-c) and off-CPU time in one profile, in nanoseconds, so `top` shows wall time per function'
complete -c rprof -n "__fish_rprof_using_subcommand record" -l label-cgroup -d 'Label each sample with its task\'s cgroup (e.g. `/system.slice/nginx.service`), to tell containers and services apart in the pprof output (label `cgroup`). Needs Linux 5.7 or later'
complete -c rprof -n "__fish_rprof_using_subcommand record" -l no-embed-symbols -d 'Do not embed symbols in the file (the report then reads this machine\'s binaries)'
complete -c rprof -n "__fish_rprof_using_subcommand record" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rprof -n "__fish_rprof_using_subcommand report" -s i -l input -d 'Input file (rprof\'s or Linux perf\'s perf.data), or `-` for standard input [default: rprof.data]' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand report" -l format -d 'Output format' -r -f -a "top\t'Table of functions with self and total share'
tree\t'Call tree under each function, like `perf report -g` (see --order)'
folded\t'Folded stacks for flame graph tools'
svg\t'Flame graph SVG (inferno), titled with the command, event, samples and duration; tooltips name the unit'
pprof\t'pprof profile (gzipped profile.proto) for `go tool pprof`, Pyroscope, Parca and speedscope: every event with its unit, inline frames, mappings with build ids, pid/tid/comm labels. Binary: write it with -o FILE or into a pipe'
html\t'Flame graph as one self-contained HTML page (no network): drawn on a canvas from an embedded tree of the unique stacks, with search, click-to-zoom and a sortable table of functions'
script\t'One line per sample in time order, like `perf script`: comm, pid/tid, CPU, time, period, event, then a tracepoint\'s raw fields (name=value) or the sampled address'"
complete -c rprof -n "__fish_rprof_using_subcommand report" -s s -l sort -d 'Group rows by these keys: comm, pid, dso, symbol (comma-separated)' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -l percent-limit -d 'Hide rows below this share (percent)' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -s n -l rows -d 'Show at most N rows (0: all) [default: what fits on a terminal, all in a pipe]' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -l order -d 'Tree: grow each function\'s tree toward its callers or its callees' -r -f -a "callee\t'Under each function, the functions that called it, out to the thread\'s first frame (perf\'s `-g callee`): who calls the hot code'
caller\t'Under each function, the functions it called, down to the leaves (perf\'s `-g caller`): where its time goes'"
complete -c rprof -n "__fish_rprof_using_subcommand report" -l max-stack -d 'Tree: at most this many levels below each function (0: no limit)' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -l branch-limit -d 'Tree: hide branches below this share of the event\'s total (percent)' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -l event -d 'Show only this event (as the report header names it). Default: top and tree show every event, one section each; pprof writes every event, one value column each; folded and svg show the first' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -l pid -d 'Only samples of these processes (comma-separated)' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -l comm -d 'Only samples of threads with this name (comma-separated)' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -s o -l output -d 'Write to this file instead of standard output' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand report" -l min-width -d 'Flame graph (svg, html): leave out frames narrower than this, in pixels of the 1200-pixel-wide graph as FlameGraph counts them (`0.5`), or in percent of the total with a `%` sign (`0.5%`) [default: 0.1, i.e. 0.0083%]' -r
complete -c rprof -n "__fish_rprof_using_subcommand report" -l children -d 'Order by total (inclusive) share; the default when the file has call chains'
complete -c rprof -n "__fish_rprof_using_subcommand report" -l no-children -d 'Order by self share only'
complete -c rprof -n "__fish_rprof_using_subcommand report" -l full-names -d 'Show names in full: no C++ parameter lists shortened to `(...)`, no long names cut to the terminal width'
complete -c rprof -n "__fish_rprof_using_subcommand report" -l inverted -d 'Flame graph (svg, html): invert it into an icicle graph: each stack reversed, so the sampled functions form the top row and their callers hang below them (who calls the hot code)'
complete -c rprof -n "__fish_rprof_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s e -l event -d 'Events to count, comma-separated; repeat -e for more; `{a,b}` counts a group together. Names: task-clock, cpu-clock, context-switches (cs), cpu-migrations, page-faults, minor-faults, major-faults, alignment-faults, emulation-faults, cycles, instructions, branches, branch-misses, cache-references, cache-misses, bus-cycles, ref-cycles, raw rNNNN (hex), PMU terms pmu/event=..,umask=../, hardware cache events, tracepoints subsys:name (globs like \'sched:*\' count every match; `rprof list` shows them all); modifiers :u, :k, :h. Default: perf stat\'s set (task-clock, context-switches, cpu-migrations, page-faults, cycles, instructions, branches, branch-misses)' -r
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s r -l repeat -d 'Run the command N times and print the mean of each count with `( +- x% )`: the standard error of the mean (sample standard deviation / sqrt(N)) as a percentage of the mean, as perf stat does' -r
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s I -l interval-print -d 'Print the counts of every interval of MS milliseconds (at least 10), each line led by the time since counting started' -r
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s x -l field-separator -d 'CSV output with SEP between fields (perf\'s columns; see below)' -r
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s p -l pid -d 'These processes (comma-separated), with all their threads' -r
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s t -l tid -d 'These threads only (comma-separated)' -r
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s C -l cpu -d 'Only these CPUs, e.g. `0-3,6` (system-wide unless -p or -t is given)' -r
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s o -l output -d 'Write the counts to this file instead of standard error' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s j -l json -d 'One JSON object per line, with perf\'s field names'
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s A -l no-aggr -d 'One row per CPU instead of their sum (with -a or -C)'
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s a -l all-cpus -d 'Every process on every CPU (system-wide)'
complete -c rprof -n "__fish_rprof_using_subcommand stat" -s h -l help -d 'Print help'
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l format -d 'Output format' -r -f -a "top\t'Functions ranked by change: inclusive and self share before and after, delta, confidence interval, verdict'
svg\t'Differential flame graph on AFTER\'s stacks, every frame coloured by the change of its inclusive share'
folded\t'Differential folded stacks, `stack before after` (difffolded format)'
json\t'Every function with its numbers (fields in docs/diff.md)'"
complete -c rprof -n "__fish_rprof_using_subcommand diff" -s o -l output -d 'Write to FILE instead of standard output' -r -F
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l event -d 'The event to compare in recordings with several [default: the first]' -r
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l min-share -d 'Test only functions whose inclusive share, averaged over BEFORE and AFTER, is at least PCT points (smaller ones are listed in JSON, not tested)' -r
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l min-effect -d 'Flag only changes of an inclusive share larger than PCT points (a minimum-effect test: the null is |delta| <= PCT). One recording a side measures its own noise, not the variation between two runs of the same program, which is about a point; 0 tests against no change' -r
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l alpha -d 'False discovery rate over the tested functions (Benjamini-Hochberg); intervals are at 1 - A' -r
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l fail-on -d 'Exit with status 3 when any function\'s inclusive share grew significantly by more than PCT points' -r
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l title -d 'Flame graph title' -r
complete -c rprof -n "__fish_rprof_using_subcommand diff" -l per-second -d 'Compare weight per second (both sides over BEFORE\'s total per second) instead of shares; needs inputs with durations'
complete -c rprof -n "__fish_rprof_using_subcommand diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rprof -n "__fish_rprof_using_subcommand completions" -s h -l help -d 'Print help'
complete -c rprof -n "__fish_rprof_using_subcommand list" -s h -l help -d 'Print help'
complete -c rprof -n "__fish_rprof_using_subcommand help; and not __fish_seen_subcommand_from record report stat diff completions list help" -f -a "record" -d 'Record samples of a command, processes, threads or the whole system'
complete -c rprof -n "__fish_rprof_using_subcommand help; and not __fish_seen_subcommand_from record report stat diff completions list help" -f -a "report" -d 'Turn a recording (rprof\'s or Linux perf\'s) into a table, call tree, folded stacks, a flame graph or a pprof profile'
complete -c rprof -n "__fish_rprof_using_subcommand help; and not __fish_seen_subcommand_from record report stat diff completions list help" -f -a "stat" -d 'Count events (no sampling) over a command, processes or CPUs, like `perf stat`'
complete -c rprof -n "__fish_rprof_using_subcommand help; and not __fish_seen_subcommand_from record report stat diff completions list help" -f -a "diff" -d 'Compare two profiles (recordings, folded stacks or pprof): what grew or shrank, and whether the change is more than noise'
complete -c rprof -n "__fish_rprof_using_subcommand help; and not __fish_seen_subcommand_from record report stat diff completions list help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c rprof -n "__fish_rprof_using_subcommand help; and not __fish_seen_subcommand_from record report stat diff completions list help" -f -a "list" -d 'List the events this machine offers for `record -e`: software, hardware (marked when the PMU is missing), hardware cache, PMU and tracepoint events'
complete -c rprof -n "__fish_rprof_using_subcommand help; and not __fish_seen_subcommand_from record report stat diff completions list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
