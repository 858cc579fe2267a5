//! Progress while sending: the per-file and batch callbacks, cancellation checks between
//! chunks, and the terminal progress bar (feature `progress-bar`).

use super::options::{aborted_by_callback, BatchProgress, SendOptions};
use crate::error::Result;

/// Where the current file stands in the list.
#[derive(Clone, Copy)]
pub(crate) struct Place {
    index: usize,
    count: usize,
    /// Bytes of the files done before the current one.
    before: u64,
    total: u64,
}

impl Place {
    fn progress<'n>(&self, name: &'n str, file_sent: u64, file_total: u64) -> BatchProgress<'n> {
        BatchProgress {
            name,
            index: self.index,
            count: self.count,
            file_sent,
            file_total,
            // A file that grew since it was listed must not push the batch past its total.
            sent: (self.before + file_sent).min(self.total),
            total: self.total,
            receiver: 0,
        }
    }
}

/// Walks a list of files and says where each stands in the whole: in list order with
/// [`Overall::next`], or in any order with [`Overall::place_of`] and [`Overall::pass`] (the
/// files a probe found changed come after the probes of later files), so the batch's bytes sent
/// never go back.
pub(crate) struct Overall<'a> {
    sizes: &'a [u64],
    place: Place,
    /// Files done (sent, skipped or refused), and their bytes.
    passed: Vec<bool>,
    passed_bytes: u64,
}

impl<'a> Overall<'a> {
    pub(crate) fn new(sizes: &'a [u64]) -> Self {
        let place = Place {
            index: 0,
            count: sizes.len(),
            before: 0,
            total: sizes.iter().sum(),
        };
        let passed = vec![false; sizes.len()];
        Overall {
            sizes,
            place,
            passed,
            passed_bytes: 0,
        }
    }

    /// Where file `i` stands when it starts now: after the files done so far.
    pub(crate) fn place_of(&self, i: usize) -> Place {
        Place {
            index: i,
            before: self.passed_bytes,
            ..self.place
        }
    }

    /// File `i` is done: its bytes count in the places of the files after it (once).
    pub(crate) fn pass(&mut self, i: usize) {
        if !std::mem::replace(&mut self.passed[i], true) {
            self.passed_bytes += self.sizes[i];
        }
    }

    /// Moves on to file `i` (files are taken in order).
    pub(crate) fn next(&mut self, i: usize) {
        if i > 0 {
            self.place.before += self.sizes[self.place.index];
        }
        self.place.index = i;
    }

    pub(crate) fn place(&self) -> Place {
        self.place
    }
}

/// Reports one file's progress: cancellation, the per-file callback, the batch callback (when
/// the file has a place in a list), and the bar.
pub(crate) struct Progress<'a> {
    opts: &'a SendOptions,
    place: Option<Place>,
    bar: Option<&'a Bar>,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(opts: &'a SendOptions, place: Option<Place>, bar: Option<&'a Bar>) -> Self {
        Progress { opts, place, bar }
    }

    /// `sent` of `total` bytes of `name` are out; `Err` when the transfer must stop.
    pub(crate) fn report(&self, name: &str, sent: u64, total: u64) -> Result<()> {
        if let Some(c) = &self.opts.cancel {
            c.check()?;
        }
        if let Some(cb) = &self.opts.progress {
            if !cb(name, sent, total) {
                return Err(aborted_by_callback());
            }
        }
        self.report_batch(name, sent, total)
    }

    /// The batch callback alone: for a file skipped as unchanged, which moves the batch past it.
    pub(crate) fn report_batch(&self, name: &str, sent: u64, total: u64) -> Result<()> {
        match (&self.opts.batch_progress, &self.place) {
            (Some(cb), Some(place)) if !cb(&place.progress(name, sent, total)) => {
                Err(aborted_by_callback())
            }
            _ => Ok(()),
        }
    }

    /// Moves the bar by `bytes` just sent.
    pub(crate) fn advance(&self, bytes: u64) {
        if let Some(b) = self.bar {
            b.inc(bytes);
        }
    }
}

/// One progress bar on stderr for the whole transfer (all files), the current file as its
/// message. It is drawn whenever it is asked for, even when stderr is not a terminal (the caller
/// decides: kn-sock asks for it on a terminal, or when `--show-progress` forces it). Finished or
/// dropped, it ends its line, so what is printed next starts on a line of its own. Without the
/// `progress-bar` feature it draws nothing.
pub(crate) struct Bar {
    #[cfg(feature = "progress-bar")]
    bar: indicatif::ProgressBar,
}

impl Bar {
    #[cfg(feature = "progress-bar")]
    pub(crate) fn new(total_bytes: u64, files: usize) -> Bar {
        use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
        use std::io::IsTerminal;
        // indicatif hides a bar whose stderr is not a terminal: drawn anyway through `Forced`.
        let target = match std::io::stderr().is_terminal() {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::term_like_with_hz(Box::new(Forced), 4),
        };
        let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
        let template = match files {
            1 => "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            _ => "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar { bar }
    }

    #[cfg(not(feature = "progress-bar"))]
    pub(crate) fn new(_total_bytes: u64, _files: usize) -> Bar {
        Bar {}
    }

    /// For a stream of unknown size: the bytes so far and the rate, no bar.
    pub(crate) fn unsized_stream(name: &str) -> Bar {
        let bar = Bar::new(0, 1);
        #[cfg(feature = "progress-bar")]
        {
            bar.bar.unset_length();
            let style = indicatif::ProgressStyle::with_template("{msg} {bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            bar.bar.set_style(style);
        }
        bar.set_message(name);
        bar
    }

    pub(crate) fn inc(&self, _bytes: u64) {
        #[cfg(feature = "progress-bar")]
        self.bar.inc(_bytes);
    }

    pub(crate) fn set_message(&self, _name: &str) {
        #[cfg(feature = "progress-bar")]
        self.bar.set_message(_name.to_string());
    }

    /// Draws the bar a last time and ends its line (indicatif leaves the cursor after it).
    pub(crate) fn finish(&self) {
        #[cfg(feature = "progress-bar")]
        if !self.bar.is_finished() {
            use std::io::Write;
            self.bar.finish();
            if !self.bar.is_hidden() {
                let _ = std::io::stderr().write_all(b"\n");
            }
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// stderr as a terminal for indicatif when it is not one (a pipe, a file): the bar is redrawn
/// after a carriage return, as tqdm does, and no cursor movement or erase sequence is written
/// (a log file would keep them as garbage). A redraw shorter than the last is padded by
/// indicatif itself.
#[cfg(feature = "progress-bar")]
#[derive(Debug)]
struct Forced;

#[cfg(feature = "progress-bar")]
impl Forced {
    fn put(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().write_all(s.as_bytes())
    }
}

#[cfg(feature = "progress-bar")]
impl indicatif::TermLike for Forced {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r")
    }
    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}
