//! Progress of the offline commands: a bar on a terminal, a plain line every
//! few seconds otherwise (logs, CI), both on stderr.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    started: Instant,
    last_line: Cell<Instant>,
}

impl Progress {
    /// `total`, when known, gives the bar its length.
    pub fn new(label: &'static str, total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{prefix} {bar:40} {pos}/{len} {rate} eta {eta} {msg}"
            } else {
                "{prefix} {spinner} {pos} {rate} {msg}"
            };
            // A whole number a second (indicatif's own `per_sec` prints
            // `10,700.6521/s`).
            let rate = |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", s.per_sec());
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .with_key("rate", rate),
            );
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            label,
            started: now,
            last_line: Cell::new(now),
        }
    }

    /// Sets the position and the message after it.
    pub fn update(&self, position: u64, message: impl FnOnce() -> String) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(message());
            }
            None if self.last_line.get().elapsed() >= PLAIN_EVERY => {
                self.last_line.set(Instant::now());
                let secs = self.started.elapsed().as_secs_f64();
                let rate = position as f64 / secs.max(1e-9);
                eprintln!(
                    "{}: {position} after {secs:.0}s ({rate:.0}/s), {}",
                    self.label,
                    message()
                );
            }
            None => {}
        }
    }

    /// Prints a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Prints a line on stdout without breaking the bar.
    pub fn println_stdout(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
