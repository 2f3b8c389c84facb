//! `cargo xtask bench idle`: what a run costs when the source has nothing new.
//!
//! A source server inside this process answers every request with an empty page. Two
//! measurements of the release binary against it:
//! - one pipeline, `run --once`, timed from process start to exit (the floor of a scheduled
//!   run that finds nothing: start, load, one request, exit);
//! - 100 pipelines in one `run DIR` process, each scheduled every second: after the first
//!   tick (100 requests) the process's CPU time (user + system, from /proc) is taken over the
//!   next ticks, counted by the requests the server receives, and its peak and current RSS
//!   at the end.
//!
//! Each run checks that every pipeline asked the source and that nothing was written: no
//! output line, no state file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cannectors_test_support::http::{Response, Server};

use crate::bench::{run_pipeline, scratch_dir};

/// Pipelines in the directory of the second measurement.
const PIPELINES: usize = 100;
/// Ticks measured after the first one.
const TICKS: usize = 10;

/// Runs the idle benchmark and prints two Markdown tables.
pub(crate) fn idle(binary: &Path, runs: usize) -> Result<(), String> {
    let source = Server::start(|_| Response::json_text(br#"{"items":[]}"#.to_vec()));
    println!("One pipeline, `run --once`, nothing new:");
    println!();
    println!("| run | milliseconds | peak RSS (MiB) |");
    println!("|---:|---:|---:|");
    let mut best = f64::MAX;
    for run in 1..=runs.max(5) {
        let (seconds, peak_rss_kib) = run_once(binary, &source)?;
        best = best.min(seconds);
        println!(
            "| {run} | {:.1} | {:.1} |",
            seconds * 1000.0,
            peak_rss_kib as f64 / 1024.0
        );
    }
    println!("| best | {:.1} | |", best * 1000.0);
    println!();
    println!("{PIPELINES} pipelines in one `run DIR` process, every second, nothing new:");
    println!();
    println!(
        "| run | ticks | CPU s per tick (all pipelines) | CPU ms per pipeline run | peak RSS (MiB) | RSS at the end (MiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for run in 1..=runs {
        let m = run_directory(binary)?;
        println!(
            "| {run} | {} | {:.3} | {:.2} | {:.1} | {:.1} |",
            m.ticks,
            m.cpu_seconds / m.ticks as f64,
            m.cpu_seconds * 1000.0 / (m.ticks * PIPELINES) as f64,
            m.peak_rss_kib as f64 / 1024.0,
            m.rss_kib as f64 / 1024.0
        );
    }
    Ok(())
}

/// A pipeline reading `path` of the source, with cursors, to a file; `schedule` when given.
fn pipeline(name: &str, endpoint: &str, schedule: Option<&str>) -> String {
    let schedule = schedule
        .map(|s| format!("  schedule: \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        r#"name: {name}
input:
  type: httpPolling
  endpoint: {endpoint}
  dataField: items
{schedule}  statePersistence:
    timestamp: {{field: updated_at, queryParam: updated_after}}
    id: {{field: id, queryParam: after_id}}
    storagePath: ./state
output: {{type: file, path: out/{name}.jsonl}}
"#
    )
}

/// Seconds and peak RSS of one `run --once` that finds nothing new.
fn run_once(binary: &Path, source: &Server) -> Result<(f64, u64), String> {
    let dir = scratch_dir()?;
    let file = dir.join("idle.yaml");
    std::fs::write(&file, pipeline("idle", &source.url("/idle"), None))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let before = source.requests().len();
    let run = run_pipeline(binary, &file, &dir);
    let asked = source.requests().len() - before;
    let written = nothing_written(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let run = run?;
    written?;
    if asked != 1 {
        return Err(format!(
            "the run sent {asked} requests to the source, not one"
        ));
    }
    Ok((run.seconds, run.peak_rss_kib))
}

/// No output file holds a line and no state file was written.
fn nothing_written(dir: &Path) -> Result<(), String> {
    for sub in ["out", "state"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.display().to_string();
            let holds_data = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
            if (sub == "state" && name.ends_with(".json")) || (sub == "out" && holds_data) {
                return Err(format!(
                    "{name} was written, though the source had nothing new"
                ));
            }
        }
    }
    Ok(())
}

struct Idle {
    ticks: usize,
    cpu_seconds: f64,
    peak_rss_kib: u64,
    rss_kib: u64,
}

/// One `run DIR` process over [`PIPELINES`] pipelines, measured over [`TICKS`] ticks.
fn run_directory(binary: &Path) -> Result<Idle, String> {
    let source = Server::start(|_| Response::json_text(br#"{"items":[]}"#.to_vec()));
    let dir = scratch_dir()?;
    let pipelines = dir.join("pipelines");
    std::fs::create_dir_all(&pipelines).map_err(|e| format!("{}: {e}", pipelines.display()))?;
    for n in 0..PIPELINES {
        let name = format!("p{n:03}");
        let file = pipelines.join(format!("{name}.yaml"));
        let text = pipeline(&name, &source.url(&format!("/{name}")), Some("* * * * * *"));
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let mut child = Command::new(binary)
        .args(["--quiet", "run"])
        .arg(&pipelines)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let measured = measure(&source, child.id());
    let _ = child.kill();
    let output = child.wait_with_output().map_err(|e| e.to_string());
    let written = nothing_written(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let measured = measured.map_err(|e| match &output {
        Ok(output) => format!(
            "{e}; the process said: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => e,
    })?;
    written?;
    let requests = source.requests();
    for n in 0..PIPELINES {
        let path = format!("/p{n:03}");
        let asked = requests.iter().filter(|r| r.path == path).count();
        if asked < TICKS {
            return Err(format!(
                "pipeline p{n:03} asked the source {asked} times in {} ticks",
                measured.ticks + 1
            ));
        }
    }
    Ok(measured)
}

/// Waits for the first tick, then takes the CPU time of process `pid` over [`TICKS`] more.
fn measure(source: &Server, pid: u32) -> Result<Idle, String> {
    // Bounded: a process that stops asking fails the bench instead of hanging it.
    if !source.wait_for_requests(PIPELINES, Duration::from_secs(30)) {
        return Err(format!(
            "the {PIPELINES} pipelines did not all ask the source within 30 s"
        ));
    }
    let first = source.requests().len();
    let cpu_before = cpu_seconds(pid)?;
    let wanted = first + PIPELINES * TICKS;
    if !source.wait_for_requests(wanted, Duration::from_secs(TICKS as u64 * 3 + 10)) {
        return Err(format!(
            "{} requests in {TICKS} ticks, not {}",
            source.requests().len() - first,
            PIPELINES * TICKS
        ));
    }
    let cpu_after = cpu_seconds(pid)?;
    let requests = source.requests().len() - first;
    let (peak_rss_kib, rss_kib) = memory_kib(pid)?;
    Ok(Idle {
        ticks: requests / PIPELINES,
        cpu_seconds: cpu_after - cpu_before,
        peak_rss_kib,
        rss_kib,
    })
}

/// User + system CPU seconds of a process so far, from /proc (in clock ticks of 1/100 s, the
/// `USER_HZ` of Linux on every architecture it runs here).
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name, in parentheses, may hold spaces: count fields after its end.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("/proc/{pid}/stat has no command name: {stat}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime); the first after the name is field 3.
    let ticks = |at: usize| {
        fields
            .get(at)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat has no field {}: {stat}", at + 3))
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Peak and current resident memory of a process, from /proc.
fn memory_kib(pid: u32) -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .ok_or_else(|| format!("/proc/{pid}/status has no {name}"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}
