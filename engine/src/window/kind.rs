//! Event-time windows: which windows a timestamp belongs to, and when a
//! window is complete.
//!
//! Windows start at multiples of their size (or slide) since the epoch, as in
//! Flink. Times are milliseconds since the epoch.

use crate::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `[s, s + size)` with `s` a multiple of `size`.
    Tumble { size: Millis },
    /// Windows of `size` starting every `slide`; a time is in `size / slide` of them.
    Hop { slide: Millis, size: Millis },
    /// `[s, s + step)`, `[s, s + 2 step)`, ... `[s, s + max)` with `s` a multiple of `max`.
    Cumulate { step: Millis, max: Millis },
    /// Per key, rows closer than `gap` share a window `[first, last + gap)`.
    /// A row on its own is `[ts, ts + gap)`; the session operator merges.
    Session { gap: Millis },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("window size must be positive, got {0} ms")]
    NonPositiveSize(i64),
    #[error("{what} ({size} ms) must be a multiple of {unit_name} ({unit} ms)")]
    NotAMultiple {
        what: &'static str,
        size: i64,
        unit_name: &'static str,
        unit: i64,
    },
}

/// A window as `[start, end)` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: Millis,
    pub end: Millis,
}

impl WindowKind {
    pub fn tumble(size: Millis) -> Result<Self, WindowError> {
        positive(size)?;
        Ok(WindowKind::Tumble { size })
    }

    pub fn hop(slide: Millis, size: Millis) -> Result<Self, WindowError> {
        positive(slide)?;
        positive(size)?;
        multiple("window size", size, "the slide", slide)?;
        Ok(WindowKind::Hop { slide, size })
    }

    pub fn cumulate(step: Millis, max: Millis) -> Result<Self, WindowError> {
        positive(step)?;
        positive(max)?;
        multiple("max window size", max, "the step", step)?;
        Ok(WindowKind::Cumulate { step, max })
    }

    pub fn session(gap: Millis) -> Result<Self, WindowError> {
        positive(gap)?;
        Ok(WindowKind::Session { gap })
    }

    /// How many windows one timestamp falls into.
    pub fn windows_per_row(&self) -> usize {
        match *self {
            WindowKind::Tumble { .. } | WindowKind::Session { .. } => 1,
            WindowKind::Hop { slide, size } => (size / slide) as usize,
            WindowKind::Cumulate { step, max } => (max / step) as usize,
        }
    }

    /// The `i`-th window (`i < windows_per_row()`) that `ts` belongs to.
    /// Assigning per index lets callers process a whole batch once per
    /// index with a single vectorised pass.
    #[inline]
    pub fn nth_window(&self, ts: Millis, i: usize) -> Window {
        // Saturating: a time within a window of the ends of i64 (a NULL
        // time is i64::MIN, and is always late) gets a clamped window, not
        // an overflow.
        let i = i as i64;
        match *self {
            WindowKind::Tumble { size } => {
                let start = ts.saturating_sub(ts.rem_euclid(size));
                Window {
                    start,
                    end: start.saturating_add(size),
                }
            }
            WindowKind::Hop { slide, size } => {
                let last_start = ts.saturating_sub(ts.rem_euclid(slide));
                let start = last_start.saturating_sub(i.saturating_mul(slide));
                Window {
                    start,
                    end: start.saturating_add(size),
                }
            }
            WindowKind::Cumulate { step, max } => {
                let start = ts.saturating_sub(ts.rem_euclid(max));
                let first_end = ts.saturating_sub(ts.rem_euclid(step)).saturating_add(step);
                Window {
                    start,
                    end: first_end.saturating_add(i.saturating_mul(step)),
                }
            }
            WindowKind::Session { gap } => Window {
                start: ts,
                end: ts.saturating_add(gap),
            },
        }
    }

    /// Whether `nth_window(ts, i)` exists: cumulate windows end at
    /// `start + max`, so later rows of a period fall into fewer windows.
    #[inline]
    pub fn has_nth_window(&self, ts: Millis, i: usize) -> bool {
        match *self {
            WindowKind::Cumulate { max, .. } => {
                let window = self.nth_window(ts, i);
                window.end <= window.start.saturating_add(max)
            }
            _ => i < self.windows_per_row(),
        }
    }
}

fn positive(size: Millis) -> Result<(), WindowError> {
    if size > 0 {
        Ok(())
    } else {
        Err(WindowError::NonPositiveSize(size))
    }
}

fn multiple(
    what: &'static str,
    size: Millis,
    unit_name: &'static str,
    unit: Millis,
) -> Result<(), WindowError> {
    if size % unit == 0 {
        Ok(())
    } else {
        Err(WindowError::NotAMultiple {
            what,
            size,
            unit_name,
            unit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(kind: WindowKind, ts: Millis) -> Vec<(Millis, Millis)> {
        (0..kind.windows_per_row())
            .filter(|&i| kind.has_nth_window(ts, i))
            .map(|i| kind.nth_window(ts, i))
            .map(|w| (w.start, w.end))
            .collect()
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch_also_before_it() {
        let kind = WindowKind::tumble(10).unwrap();
        assert_eq!(windows(kind, 0), [(0, 10)]);
        assert_eq!(windows(kind, 19), [(10, 20)]);
        assert_eq!(windows(kind, -1), [(-10, 0)]);
    }

    #[test]
    fn a_hop_row_is_in_size_over_slide_windows_that_all_contain_it() {
        let kind = WindowKind::hop(2, 6).unwrap();
        assert_eq!(windows(kind, 7), [(6, 12), (4, 10), (2, 8)]);
    }

    #[test]
    fn cumulate_windows_share_a_start_and_grow_by_step() {
        let kind = WindowKind::cumulate(2, 6).unwrap();
        assert_eq!(windows(kind, 0), [(0, 2), (0, 4), (0, 6)]);
        assert_eq!(windows(kind, 3), [(0, 4), (0, 6)]);
        assert_eq!(windows(kind, 5), [(0, 6)]);
        assert_eq!(windows(kind, 6), [(6, 8), (6, 10), (6, 12)]);
    }

    #[test]
    fn bad_sizes_are_refused_with_the_reason() {
        assert_eq!(WindowKind::tumble(0), Err(WindowError::NonPositiveSize(0)));
        assert!(matches!(
            WindowKind::hop(4, 10),
            Err(WindowError::NotAMultiple { .. })
        ));
    }
}
