//! Live progress on a terminal: the same log lines as off a terminal,
//! scrolling above a status area pinned at the bottom, with each running
//! item and its elapsed time and a bar of done / failed / waiting out of the
//! total. The area is cleared before the command prints its report.
//!
//! Used only when stderr is a terminal and neither `--json` nor `-q` is
//! given; otherwise [`crate::render::progress_sink`] prints the lines alone,
//! exactly as before.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ocuroot_core::model::{Event, EventSink, RunStatus};
use ocuroot_core::refs::{Ref, WorkPath};

/// Counts behind the bar.
#[derive(Default)]
struct Counts {
    total: u64,
    done: u64,
    failed: u64,
    running: u64,
}

/// The status area of this process, once one is shown.
struct Area {
    multi: MultiProgress,
    bar: ProgressBar,
    running: Mutex<HashMap<(Ref, WorkPath), ProgressBar>>,
    counts: Mutex<Counts>,
}

static AREA: OnceLock<Area> = OnceLock::new();

fn bar_message(c: &Counts) -> String {
    let waiting = c.total.saturating_sub(c.done + c.failed + c.running);
    format!(
        "{} done · {} failed · {} running · {} waiting",
        c.done, c.failed, c.running, waiting
    )
}

impl Area {
    fn new() -> Area {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{bar:30.green/white} {pos}/{len} {msg}  {elapsed}")
                .expect("the bar template is valid")
                .progress_chars("█▌ "),
        );
        bar.set_message(bar_message(&Counts::default()));
        bar.enable_steady_tick(Duration::from_millis(200));
        Area {
            multi,
            bar,
            running: Mutex::new(HashMap::new()),
            counts: Mutex::new(Counts::default()),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c);
        self.bar.set_length(c.total);
        self.bar.set_position(c.done);
        self.bar.set_message(bar_message(&c));
    }

    fn event(&self, event: &Event) {
        match event {
            Event::ReleaseStarted {
                total,
                complete,
                failed,
                ..
            } => self.update(|c| {
                c.total += *total as u64;
                c.done += *complete as u64;
                c.failed += *failed as u64;
            }),
            Event::RunStarted { release, work, run } => {
                let spinner = self
                    .multi
                    .insert_before(&self.bar, ProgressBar::new_spinner());
                spinner.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {msg}  {elapsed}")
                        .expect("the spinner template is valid"),
                );
                let name = release.release.as_deref().unwrap_or_default();
                spinner.set_message(format!("{work} (@{name}, run {run})"));
                spinner.enable_steady_tick(Duration::from_millis(100));
                self.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((release.clone(), work.clone()), spinner);
                self.update(|c| c.running += 1);
            }
            Event::RunFinished {
                release,
                work,
                status,
                ..
            } => {
                let spinner = self
                    .running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(release.clone(), work.clone()));
                if let Some(s) = spinner {
                    s.finish_and_clear();
                    self.multi.remove(&s);
                }
                self.update(|c| {
                    c.running = c.running.saturating_sub(1);
                    match status {
                        RunStatus::Complete => c.done += 1,
                        RunStatus::Failed => c.failed += 1,
                        _ => {}
                    }
                });
            }
            _ => {}
        }
        if let Some(line) = crate::render::event_line(event) {
            // Printed above the area; the area is drawn again below it.
            let _ = self.multi.println(line);
        }
    }

    fn clear(&self) {
        for (_, s) in self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            s.finish_and_clear();
        }
        self.bar.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// The event sink for a command that runs work: the status area on a
/// terminal (unless `json`), else the plain log lines.
pub(crate) fn sink(json: bool) -> EventSink {
    if json || !std::io::stderr().is_terminal() {
        return crate::render::progress_sink();
    }
    Arc::new(|event: &Event| AREA.get_or_init(Area::new).event(event))
}

/// Clear the status area, if one is shown, before the command prints
/// anything else.
pub(crate) fn clear() {
    if let Some(area) = AREA.get() {
        area.clear();
    }
}
