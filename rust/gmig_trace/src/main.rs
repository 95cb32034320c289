// SPDX-License-Identifier: GPL-2.0

//! gmig-trace: the analysis behind `scripts/trace.sh analyze` and `pack`.
//!
//! `gmig-trace analyze DIR [--interval N] [--cap PAGES]` reads the capture
//! `scripts/trace.sh capture` wrote in DIR (capture.aub from Mesa's
//! intel_dump_gpu, execlog from trace/execlog.c, gen9-commands.tsv from
//! Mesa's genxml) and prints one JSON line per execbuffer, then a summary
//! line (../../Documentation/benchmarks.rst, "Real workloads").
//!
//! `gmig-trace pack DIR OUT [--max-pages N] [--execs N] [--cap PAGES]`
//! packs the capture's render execbuffers as a replay file
//! (`gmig_core::replay`, see `pack.rs`) and prints a summary line;
//! `gmig-trace replay-check FILE` reads one back and prints its figures.

mod analyze;
mod execlog;
mod genxml;
mod pack;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: gmig-trace analyze DIR [--interval EXECBUFFERS] [--cap PAGES]\n       \
         gmig-trace pack DIR OUT [--max-pages PAGES] [--execs EXECBUFFERS] [--cap PAGES]\n       \
         gmig-trace replay-check FILE"
    );
    ExitCode::from(2)
}

/// A capture directory's files, read.
struct Capture {
    aub: Vec<u8>,
    execs: Vec<execlog::Exec>,
    table: genxml::Table,
}

fn read_capture(dir: &std::path::Path) -> Result<Capture, String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let aub = read("capture.aub")?;
    let log = String::from_utf8(read("execlog")?).map_err(|_| "execlog: not text".to_string())?;
    let table = String::from_utf8(read("gen9-commands.tsv")?)
        .map_err(|_| "gen9-commands.tsv: not text".to_string())?;
    let table = genxml::Table::parse(&table).map_err(|e| e.to_string())?;
    let (execs, cut) = execlog::parse(&log).map_err(|e| e.to_string())?;
    if cut {
        eprintln!("gmig-trace: the execbuffer log ends in a record cut short (the program died?)");
    }
    Ok(Capture { aub, execs, table })
}

/// Reads a replay file back and prints its figures.
fn replay_check(path: &str) -> Result<(), String> {
    let blob = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let r = gmig_core::replay::Replay::parse(&blob).map_err(|e| format!("{path}: {e}"))?;
    r.validate().map_err(|e| format!("{path}: {e}"))?;
    let (mut pages, mut writes) = (0u64, 0u64);
    let mut off = r.first_record();
    while let Some(Ok((rec, next))) = r.record_at(off) {
        match rec {
            gmig_core::replay::Record::Page { .. } => pages += 1,
            gmig_core::replay::Record::Exec(e) => {
                writes += e.writes().map(|(s, e)| (e - s) / 4096).sum::<u64>()
            }
        }
        off = next;
    }
    println!(
        "replay: contexts {} execs {} map_records {} mapped_pages {} page_records {pages} model_write_pages {writes} bytes {}",
        r.contexts(),
        r.execs(),
        r.maps().count(),
        r.mapped_pages(),
        blob.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str);
    if let (Some("replay-check"), Some(f), 2) = (cmd, args.get(1), args.len()) {
        return match replay_check(f) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gmig-trace: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let (Some(cmd @ ("analyze" | "pack")), Some(dir)) = (cmd, args.get(1)) else {
        return usage();
    };
    let (out, opts) = match (cmd, args.get(2)) {
        ("pack", Some(out)) => (Some(out), &args[3..]),
        ("pack", None) => return usage(),
        _ => (None, &args[2..]),
    };
    let (mut interval, mut cap) = (1usize, 1usize << 20);
    let (mut max_pages, mut max_execs) = (u64::MAX, usize::MAX);
    let mut rest = opts.iter();
    while let Some(a) = rest.next() {
        let v = rest
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&v| v > 0);
        match (a.as_str(), v, out.is_some()) {
            ("--interval", Some(v), false) => interval = v,
            ("--cap", Some(v), _) => cap = v,
            ("--max-pages", Some(v), true) => max_pages = v as u64,
            ("--execs", Some(v), true) => max_execs = v,
            _ => return usage(),
        }
    }
    let dir = std::path::Path::new(dir);
    let run = || -> Result<String, String> {
        let c = read_capture(dir)?;
        let Some(out) = out else {
            let s = analyze::analyze(&c.aub, &c.execs, &c.table, interval, cap, |l| {
                println!("{l}")
            })
            .map_err(|e| e.0)?;
            return Ok(s.json());
        };
        let lim = pack::Limits {
            max_pages,
            max_execs,
            cap,
        };
        let p = pack::pack(&c.aub, &c.execs, &c.table, lim).map_err(|e| e.0)?;
        std::fs::write(out, &p.file).map_err(|e| format!("{out}: {e}"))?;
        Ok(p.line())
    };
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gmig-trace: {e}");
            ExitCode::FAILURE
        }
    }
}
