// SPDX-License-Identifier: GPL-2.0

//! gmig-trace: the analysis behind `scripts/trace.sh analyze`.
//!
//! `gmig-trace analyze DIR [--interval N] [--cap PAGES]` reads the capture
//! `scripts/trace.sh capture` wrote in DIR (capture.aub from Mesa's
//! intel_dump_gpu, execlog from trace/execlog.c, gen9-commands.tsv from
//! Mesa's genxml) and prints one JSON line per execbuffer, then a summary
//! line (../../Documentation/benchmarks.rst, "Real workloads").

mod analyze;
mod execlog;
mod genxml;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: gmig-trace analyze DIR [--interval EXECBUFFERS] [--cap PAGES]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some("analyze"), Some(dir)) = (args.first().map(String::as_str), args.get(1)) else {
        return usage();
    };
    let (mut interval, mut cap) = (1usize, 1usize << 20);
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        let v = rest
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&v| v > 0);
        match (a.as_str(), v) {
            ("--interval", Some(v)) => interval = v,
            ("--cap", Some(v)) => cap = v,
            _ => return usage(),
        }
    }
    let dir = std::path::Path::new(dir);
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let run = || -> Result<analyze::Summary, String> {
        let aub = read("capture.aub")?;
        let log =
            String::from_utf8(read("execlog")?).map_err(|_| "execlog: not text".to_string())?;
        let table = String::from_utf8(read("gen9-commands.tsv")?)
            .map_err(|_| "gen9-commands.tsv: not text".to_string())?;
        let table = genxml::Table::parse(&table).map_err(|e| e.to_string())?;
        let (execs, cut) = execlog::parse(&log).map_err(|e| e.to_string())?;
        if cut {
            eprintln!(
                "gmig-trace: the execbuffer log ends in a record cut short (the program died?)"
            );
        }
        analyze::analyze(&aub, &execs, &table, interval, cap, |l| println!("{l}")).map_err(|e| e.0)
    };
    match run() {
        Ok(s) => {
            println!("{}", s.json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gmig-trace: {e}");
            ExitCode::FAILURE
        }
    }
}
