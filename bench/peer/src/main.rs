//! The vm-memory 0.18 side of `deno task bench:peer`. The Deno runner (bench/peer/main.ts) drives
//! it one command a line on stdin and reads one JSON object a line on stdout:
//!
//!   lcg <n>        {"lcg":n,"sum":s}            sum of the LCG's first n high words
//!   open <case>    {"open":"case","op":"..."}   sets the case's memory up (outside any timing),
//!                  or {"unknown":"case"}        when this program has no such case
//!   run <iters>    {"ns":t}                     runs the open case's loop, timed inside
//!   close          {"closed":"case"}            runs the case's closing checks, frees its memory
//!   quit
//!
//! Anything that goes wrong answers {"error":"..."}; the runner stops on it.

mod case;
mod guest;
mod iommu;
mod iotlb;
mod lcg;
mod solo;

use std::io::{BufRead, Write};

use case::Case;

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn error(message: &str) -> String {
    format!("{{\"error\":{}}}", json_string(message))
}

fn open(name: &str) -> Option<Case> {
    guest::open(name).or_else(|| iotlb::open(name)).or_else(|| iommu::open(name))
}

fn parse_count(word: Option<&str>, command: &str) -> Result<u64, String> {
    let w = word.ok_or_else(|| format!("{command}: missing count"))?;
    w.parse::<u64>().map_err(|_| format!("{command}: count {w:?} is not an unsigned integer"))
}

struct Driver {
    open: Option<(String, Case)>,
}

impl Driver {
    fn handle(&mut self, line: &str) -> Result<String, String> {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("lcg") => {
                let n = parse_count(words.next(), "lcg")?;
                Ok(format!("{{\"lcg\":{n},\"sum\":{}}}", lcg::sum(n)))
            }
            Some("open") => {
                let name = words.next().ok_or("open: missing case name")?;
                if let Some((current, _)) = &self.open {
                    return Err(format!("open {name}: {current} is still open"));
                }
                let Some(case) = open(name) else {
                    return Ok(format!("{{\"unknown\":{}}}", json_string(name)));
                };
                let reply = format!("{{\"open\":{},\"op\":{}}}", json_string(name), json_string(&case.op));
                self.open = Some((name.to_string(), case));
                Ok(reply)
            }
            Some("run") => {
                let iters = parse_count(words.next(), "run")?;
                let (_, case) = self.open.as_mut().ok_or("run: no case is open")?;
                Ok(format!("{{\"ns\":{}}}", (case.run)(iters)))
            }
            Some("close") => {
                let (name, case) = self.open.take().ok_or("close: no case is open")?;
                if let Some(check) = case.on_close {
                    check()?;
                }
                Ok(format!("{{\"closed\":{}}}", json_string(&name)))
            }
            Some(other) => Err(format!("unknown command {other:?}")),
            None => Err("empty command".to_string()),
        }
    }
}

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut driver = Driver { open: None };
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("gmem-peer-bench: reading a command: {e}");
                std::process::exit(1);
            }
        };
        if line.trim() == "quit" {
            break;
        }
        let reply = driver.handle(&line).unwrap_or_else(|e| error(&e));
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            std::process::exit(1);
        }
    }
}
