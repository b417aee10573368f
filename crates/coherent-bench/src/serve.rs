//! One network's plain step on request, for alternating it with a peer's step in short blocks
//! (`bench/side_by_side.py --alternations`): the two sides of a ratio are then measured
//! seconds apart, not minutes, so that a host whose speed drifts changes both alike.
//!
//! The protocol is one line per request on the input and one line per answer on the output:
//! `ready` once the network is built and warmed up; then for each `steps N` request, the
//! median milliseconds of those `N` plain steps as `{"ms_per_step": M}`; `quit` (or the end of
//! the input) ends it. Any other line is answered `{"error": "..."}` naming the requests.

use crate::{data_of, mnist, setup, step, BenchNetwork};
use std::io::{self, BufRead, Write};
use std::time::Instant;

/// Serves `network`'s plain step (batch `batch`, the data of `coherent bench`'s cases) on the
/// requests read from `input`, answering on `output` (see the module's documentation).
///
/// # Errors
/// If reading `input` or writing `output` fails.
pub fn serve_plain_steps(
    network: &BenchNetwork,
    batch: usize,
    input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let (mnist, mut random) = (mnist(), None);
    let (mut s, _) = setup(network, data_of(network, &mnist, batch, &mut random), batch);
    for _ in 0..2 {
        step(&mut s, "plain");
    }
    writeln!(output, "ready")?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        match request(&line) {
            Request::Steps(n) => {
                let mut times: Vec<f64> = (0..n)
                    .map(|_| {
                        let start = Instant::now();
                        step(&mut s, "plain");
                        start.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                times.sort_by(f64::total_cmp);
                let ms = times[n / 2];
                writeln!(output, "{}", serde_json::json!({ "ms_per_step": ms }))?;
            }
            Request::Quit => break,
            Request::Unknown => {
                let error = format!(
                    "unknown request {line:?}: expected `steps N` (N at least 1) or `quit`"
                );
                writeln!(output, "{}", serde_json::json!({ "error": error }))?;
            }
        }
        output.flush()?;
    }
    Ok(())
}

/// A line of the input.
#[derive(Debug, PartialEq)]
enum Request {
    /// Time this many plain steps (at least one).
    Steps(usize),
    /// Stop.
    Quit,
    /// Anything else.
    Unknown,
}

fn request(line: &str) -> Request {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["steps", n] => match n.parse() {
            Ok(n) if n > 0 => Request::Steps(n),
            _ => Request::Unknown,
        },
        ["quit"] => Request::Quit,
        _ => Request::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_steps_quit_or_unknown() {
        assert_eq!(request("steps 3"), Request::Steps(3));
        assert_eq!(request("  steps   12 "), Request::Steps(12));
        assert_eq!(request("quit"), Request::Quit);
        for bad in [
            "steps 0",
            "steps",
            "steps -1",
            "steps two",
            "step 3",
            "",
            "quit now",
        ] {
            assert_eq!(request(bad), Request::Unknown, "{bad:?}");
        }
    }

    #[test]
    fn the_mlp_is_served_step_by_step_until_quit() {
        let input = "steps 2\nsteps x\nsteps 1\nquit\nsteps 5\n".as_bytes();
        let mut output = Vec::new();
        serve_plain_steps(&BenchNetwork::mlp(&[16]), 8, input, &mut output).unwrap();
        let text = String::from_utf8(output).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "ready");
        let json = |line: &str| -> serde_json::Value { serde_json::from_str(line).unwrap() };
        for answer in [lines[1], lines[3]] {
            let ms = json(answer)["ms_per_step"].as_f64();
            assert!(ms.is_some_and(|ms| ms > 0.0 && ms.is_finite()), "{answer}");
        }
        let error = json(lines[2])["error"].as_str().map(str::to_owned);
        assert!(
            error.is_some_and(|e| e.starts_with("unknown request \"steps x\"")),
            "{}",
            lines[2]
        );
    }
}
