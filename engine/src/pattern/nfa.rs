//! Matching one partition's rows, as Flink's CEP automaton matches them
//! for MATCH_RECOGNIZE: rows taken in strict contiguity; every row may
//! start a match; a greedy quantifier leaves its variable only with a row
//! its condition rejects, a reluctant one both stays and leaves; a match
//! ends when its last variable takes a row (or when only reluctant optional
//! variables are left). A completed match is held back while a match that
//! started earlier may still complete, then given out, and the AFTER MATCH
//! SKIP strategy discards the partial matches it rules out.

use super::reference::Matched;
use crate::error::EngineError;
use crate::kept_rows::RowRef;
use crate::time::Millis;

#[derive(Clone, Debug)]
pub struct Element {
    pub variable: usize,
    pub min: u32,
    /// `None`: no upper bound.
    pub max: Option<u32>,
    pub greedy: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Skip {
    PastLastRow,
    ToNextRow,
    ToFirst(usize),
    ToLast(usize),
}

/// A match in progress: its rows, and the element the next row may be
/// taken by with how many rows that element has taken.
#[derive(Clone, Debug)]
pub struct Partial {
    pub rows: Vec<Matched>,
    pub element: usize,
    pub count: u32,
    pub start_time: Millis,
}

impl Partial {
    fn start(&self) -> u64 {
        self.rows.first().map_or(u64::MAX, |m| m.seq)
    }
}

/// An element that has taken as many rows as it can is left.
fn normalized(pattern: &[Element], mut element: usize, mut count: u32) -> (usize, u32) {
    while element < pattern.len() && pattern[element].max == Some(count) {
        element += 1;
        count = 0;
    }
    (element, count)
}

/// Variables whose conditions a row may be tested against from `partial`'s
/// place: its element's, and those after it while the ones before can be
/// left without taking a row.
pub fn variables_to_test(pattern: &[Element], element: usize, count: u32) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut i, mut c) = (element, count);
    while i < pattern.len() {
        let e = &pattern[i];
        if e.max.is_none_or(|m| c < m) {
            out.push(e.variable);
        }
        if c < e.min {
            break;
        }
        i += 1;
        c = 0;
    }
    out
}

/// Whether a place left by reluctant (or satisfied) optional elements alone
/// reaches the end: the match is complete without another row. Flink does
/// not look past a greedy element here.
fn completes_by_leaving(pattern: &[Element], mut element: usize, mut count: u32) -> bool {
    loop {
        let e = &pattern[element];
        if e.greedy || count < e.min {
            return false;
        }
        element += 1;
        count = 0;
        if element == pattern.len() {
            return true;
        }
    }
}

#[derive(Default)]
pub struct PartitionMatches {
    pub partials: Vec<Partial>,
    /// Completed matches held back, by start.
    pub completed: Vec<Partial>,
    /// The last rows seen, for conditions reading rows before the tested one.
    pub recent: std::collections::VecDeque<RowRef>,
    pub(super) next_seq: u64,
}

impl PartitionMatches {
    pub fn is_idle(&self) -> bool {
        self.partials.is_empty() && self.completed.is_empty()
    }

    /// The oldest batch any of this partition's rows is in.
    pub fn oldest_batch(&self) -> Option<u32> {
        self.partials
            .iter()
            .chain(&self.completed)
            .flat_map(|p| p.rows.iter().map(|m| m.row.batch))
            .chain(self.recent.iter().map(|r| r.batch))
            .min()
    }

    /// Matches started `within` or longer before `now` can no longer
    /// complete.
    pub fn time_out(&mut self, now: Millis, within: Option<Millis>) {
        if let Some(within) = within {
            self.partials
                .retain(|p| now.saturating_sub(p.start_time) < within);
        }
    }

    /// Takes `row` (at `time`) into every partial match and a new one;
    /// `holds(i, variable)` says whether the row satisfies `variable`'s
    /// condition after partial match `i` (`partials.len()`: the new one).
    pub fn take(
        &mut self,
        pattern: &[Element],
        row: RowRef,
        time: Millis,
        mut holds: impl FnMut(usize, usize) -> bool,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let old = std::mem::take(&mut self.partials);
        let fresh = Partial {
            rows: Vec::new(),
            element: 0,
            count: 0,
            start_time: time,
        };
        for (i, partial) in old.iter().chain(std::iter::once(&fresh)).enumerate() {
            self.advance(pattern, partial, row, seq, &mut |v| holds(i, v));
        }
    }

    fn advance(
        &mut self,
        pattern: &[Element],
        partial: &Partial,
        row: RowRef,
        seq: u64,
        holds: &mut dyn FnMut(usize) -> bool,
    ) {
        let (mut i, mut c) = (partial.element, partial.count);
        while i < pattern.len() {
            let e = &pattern[i];
            let took = e.max.is_none_or(|m| c < m) && holds(e.variable);
            if took {
                let mut rows = Vec::with_capacity(partial.rows.len() + 1);
                rows.extend_from_slice(&partial.rows);
                rows.push(Matched {
                    row,
                    seq,
                    variable: e.variable as u16,
                });
                let (element, count) = normalized(pattern, i, c + 1);
                let taken = Partial {
                    rows,
                    element,
                    count,
                    start_time: partial.start_time,
                };
                if element == pattern.len() {
                    self.complete(taken);
                } else {
                    if completes_by_leaving(pattern, element, count) {
                        self.complete(taken.clone());
                    }
                    self.partials.push(taken);
                }
            }
            // A greedy element is left only with a row it does not take.
            if c < e.min || (e.greedy && took) {
                break;
            }
            i += 1;
            c = 0;
        }
    }

    fn complete(&mut self, matched: Partial) {
        let start = matched.start();
        let at = self.completed.partition_point(|m| m.start() <= start);
        self.completed.insert(at, matched);
    }

    /// Gives out the completed matches no earlier partial match can
    /// precede, applying `skip` after each.
    pub fn release(
        &mut self,
        skip: &Skip,
        variables: &[String],
        out: &mut Vec<Partial>,
    ) -> Result<(), EngineError> {
        while let Some(first) = self.completed.first() {
            let earliest_partial = self.partials.iter().map(Partial::start).min();
            if earliest_partial.is_some_and(|p| p < first.start()) {
                break;
            }
            let matched = self.completed.remove(0);
            let start = matched.start();
            let last = matched.rows.last().map_or(start, |m| m.seq);
            let skip_to = |variable: usize, from_last: bool| {
                let mut seqs = matched
                    .rows
                    .iter()
                    .filter(|m| m.variable as usize == variable)
                    .map(|m| m.seq);
                let found = match from_last {
                    true => seqs.next_back(),
                    false => seqs.next(),
                };
                match found {
                    None => Err(EngineError::Runtime(format!(
                        "Could not skip to {}. No such element in the found match",
                        variables[variable]
                    ))),
                    Some(seq) if seq == start => Err(EngineError::Runtime(
                        "Could not skip to first element of a match.".into(),
                    )),
                    Some(seq) => Ok(seq),
                }
            };
            // Partial and held matches starting at or before `bound` go.
            let bound = match skip {
                Skip::PastLastRow => Some(last),
                Skip::ToNextRow => Some(start),
                Skip::ToFirst(v) => skip_to(*v, false)?.checked_sub(1),
                Skip::ToLast(v) => skip_to(*v, true)?.checked_sub(1),
            };
            if let Some(bound) = bound {
                self.partials.retain(|p| p.start() > bound);
                self.completed.retain(|p| p.start() > bound);
            }
            out.push(matched);
        }
        Ok(())
    }
}
