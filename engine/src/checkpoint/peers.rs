//! The processes of one checkpointed job, coordinating over a control
//! connection per pair (beside timely's own): which round is wanted, how
//! many workers' inputs have ended, which checkpoint each process has
//! made durable, and the all-gathers at which a round's decisions (is
//! anything in flight anywhere, has every input ended) are taken from
//! every process's figures, so that every process decides alike.
//!
//! Messages on one connection arrive in the order they were sent: a
//! process announces its durable checkpoint before it joins the next
//! gather, so a gather's result comes after every announcement made
//! before it.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::checkpoint::committer::lock;
use crate::error::EngineError;

const WANT: u8 = 1;
const DONE: u8 = 2;
const DURABLE: u8 = 3;
const GATHER: u8 = 4;

/// A gather waits for its peers in slices this long, to see an abort.
const WAIT_SLICE: Duration = Duration::from_millis(50);
/// No message carries more figures than a process's checkpoint ids.
const MAX_VALUES: u32 = 1 << 20;

pub struct Peers {
    me: usize,
    writers: Vec<Option<Mutex<TcpStream>>>,
    shared: Mutex<Shared>,
    arrived: Condvar,
    /// The highest round (counted from 1) any process asked for.
    wanted: AtomicU64,
    /// Worker threads parked between steps, woken when a round is wanted.
    workers: Mutex<Vec<std::thread::Thread>>,
}

struct Shared {
    /// Per process: workers whose input has ended.
    done: Vec<u64>,
    /// Per process: the newest checkpoint it made durable.
    durable: Vec<u64>,
    /// Per gather: each process's figures, as they arrive.
    gathers: BTreeMap<u64, Vec<Option<Vec<u64>>>>,
    /// Processes whose connection ended, and why.
    lost: Vec<Option<String>>,
}

impl Peers {
    /// Starts a reader per control connection (`control[me]` is `None`).
    pub fn start(control: Vec<Option<TcpStream>>, me: usize) -> Result<Arc<Peers>, EngineError> {
        let processes = control.len();
        let mut writers = Vec::with_capacity(processes);
        let mut readers = Vec::new();
        for (process, stream) in control.into_iter().enumerate() {
            match stream {
                Some(stream) => {
                    let reader = stream.try_clone().map_err(|e| {
                        EngineError::Runtime(format!(
                            "control connection to process {process}: {e}"
                        ))
                    })?;
                    readers.push((process, reader));
                    writers.push(Some(Mutex::new(stream)));
                }
                None => writers.push(None),
            }
        }
        let peers = Arc::new(Peers {
            me,
            writers,
            shared: Mutex::new(Shared {
                done: vec![0; processes],
                durable: vec![0; processes],
                gathers: BTreeMap::new(),
                lost: vec![None; processes],
            }),
            arrived: Condvar::new(),
            wanted: AtomicU64::new(0),
            workers: Mutex::new(Vec::new()),
        });
        for (process, stream) in readers {
            let peers = peers.clone();
            std::thread::Builder::new()
                .name(format!("checkpoint-peer-{process}"))
                .spawn(move || peers.read(process, stream))
                .map_err(|e| EngineError::Runtime(format!("cannot start a peer reader: {e}")))?;
        }
        Ok(peers)
    }

    pub fn processes(&self) -> usize {
        self.writers.len()
    }

    /// The calling worker thread is woken when a round is wanted.
    pub fn wake_on_want(&self) {
        lock(&self.workers).push(std::thread::current());
    }

    /// Asks every process for round `round`.
    pub fn want(&self, round: u64) {
        self.wanted.fetch_max(round, Ordering::SeqCst);
        self.send(WANT, round, &[]);
    }

    pub fn wanted(&self) -> u64 {
        self.wanted.load(Ordering::SeqCst)
    }

    /// This process's count of workers whose input has ended.
    pub fn announce_done(&self, workers: u64) {
        lock(&self.shared).done[self.me] = workers;
        self.send(DONE, workers, &[]);
    }

    /// Workers whose input has ended, over every process.
    pub fn done_total(&self) -> u64 {
        lock(&self.shared).done.iter().sum()
    }

    /// This process made checkpoint `id` durable.
    pub fn announce_durable(&self, id: u64) {
        lock(&self.shared).durable[self.me] = id;
        self.send(DURABLE, id, &[]);
    }

    /// The newest checkpoint every process has made durable: complete.
    pub fn durable(&self) -> u64 {
        lock(&self.shared)
            .durable
            .iter()
            .copied()
            .min()
            .unwrap_or(0)
    }

    /// A process whose connection ended.
    pub fn lost(&self) -> Option<String> {
        lock(&self.shared).lost.iter().flatten().next().cloned()
    }

    /// Every process's `values` for gather `seq` (every process runs the
    /// same gathers in the same order), indexed by process.
    pub fn gather(
        &self,
        seq: u64,
        values: Vec<u64>,
        aborted: &dyn Fn() -> bool,
    ) -> Result<Vec<Vec<u64>>, EngineError> {
        self.send(GATHER, seq, &values);
        let processes = self.processes();
        let mut shared = lock(&self.shared);
        shared
            .gathers
            .entry(seq)
            .or_insert_with(|| vec![None; processes])[self.me] = Some(values);
        loop {
            let complete = shared
                .gathers
                .get(&seq)
                .is_some_and(|slots| slots.iter().all(Option::is_some));
            if complete {
                let slots = shared.gathers.remove(&seq).unwrap_or_default();
                return Ok(slots.into_iter().flatten().collect());
            }
            let missing = shared.gathers.get(&seq).and_then(|slots| {
                slots
                    .iter()
                    .enumerate()
                    .find(|(process, slot)| slot.is_none() && shared.lost[*process].is_some())
                    .map(|(process, _)| process)
            });
            if let Some(process) = missing {
                let why = shared.lost[process].clone().unwrap_or_default();
                return Err(EngineError::Runtime(format!(
                    "process {process} of the job is gone during a checkpoint: {why}"
                )));
            }
            if aborted() {
                return Err(EngineError::Runtime(
                    "the job was aborted during a checkpoint".into(),
                ));
            }
            shared = self
                .arrived
                .wait_timeout(shared, WAIT_SLICE)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Sends to every other process; a failed write shows as a lost
    /// process when its figures are awaited.
    fn send(&self, kind: u8, value: u64, values: &[u64]) {
        let mut frame = Vec::with_capacity(13 + 8 * values.len());
        frame.push(kind);
        frame.extend_from_slice(&value.to_le_bytes());
        frame.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for v in values {
            frame.extend_from_slice(&v.to_le_bytes());
        }
        for (process, writer) in self.writers.iter().enumerate() {
            let Some(writer) = writer else { continue };
            if let Err(error) = lock(writer).write_all(&frame) {
                self.mark_lost(process, format!("cannot send to it: {error}"));
            }
        }
    }

    fn mark_lost(&self, process: usize, why: String) {
        let mut shared = lock(&self.shared);
        if shared.lost[process].is_none() {
            shared.lost[process] = Some(why);
        }
        self.arrived.notify_all();
    }

    fn read(&self, process: usize, stream: TcpStream) {
        let mut reader = BufReader::new(stream);
        let why = loop {
            match read_frame(&mut reader) {
                Ok((kind, value, values)) => self.receive(process, kind, value, values),
                Err(error) => break error,
            }
        };
        self.mark_lost(process, why);
    }

    fn receive(&self, process: usize, kind: u8, value: u64, values: Vec<u64>) {
        match kind {
            WANT => {
                self.wanted.fetch_max(value, Ordering::SeqCst);
                for worker in lock(&self.workers).iter() {
                    worker.unpark();
                }
            }
            DONE => lock(&self.shared).done[process] = value,
            DURABLE => lock(&self.shared).durable[process] = value,
            _ => {
                let processes = self.processes();
                let mut shared = lock(&self.shared);
                shared
                    .gathers
                    .entry(value)
                    .or_insert_with(|| vec![None; processes])[process] = Some(values);
                self.arrived.notify_all();
            }
        }
    }
}

fn read_frame(reader: &mut impl Read) -> Result<(u8, u64, Vec<u64>), String> {
    let mut head = [0u8; 13];
    reader.read_exact(&mut head).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "its connection closed".to_string(),
        _ => format!("reading from it: {e}"),
    })?;
    let kind = head[0];
    if !(WANT..=GATHER).contains(&kind) {
        return Err(format!("it sent an unknown message kind {kind}"));
    }
    let value = u64::from_le_bytes(head[1..9].try_into().unwrap_or_default());
    let count = u32::from_le_bytes(head[9..13].try_into().unwrap_or_default());
    if count > MAX_VALUES {
        return Err(format!("it sent a message of {count} figures"));
    }
    let mut bytes = vec![0u8; count as usize * 8];
    reader
        .read_exact(&mut bytes)
        .map_err(|e| format!("reading from it: {e}"))?;
    let values = bytes
        .chunks_exact(8)
        .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or_default()))
        .collect();
    Ok((kind, value, values))
}
