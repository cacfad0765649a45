//! One worker's view of checkpointing: whether its sources are paused,
//! and the states of its operators, which register themselves while the
//! dataflow is built. It is thread-local because a timely worker is one
//! thread and its operators' states are `Rc`s that never leave it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use timely::scheduling::Activator;

use crate::checkpoint::Mode;
use crate::checkpoint::storage::SinkOutput;
use crate::error::EngineError;

/// Encodes a snapshot later, on the committer's thread.
pub type Encode = Box<dyn FnOnce() -> Result<Vec<u8>, EngineError> + Send>;

/// What an operator gives a checkpoint.
pub enum Snapshot {
    Whole(Vec<u8>),
    /// What changed since the operator's last snapshot (or restore), to
    /// apply on top of it.
    Delta(Vec<u8>),
    /// A whole state or delta the committer encodes while the job goes
    /// on: for state an operator can hand over as it is (shared Arrow
    /// batches that are never changed).
    Later {
        delta: bool,
        encode: Encode,
    },
}

impl Snapshot {
    pub fn is_delta(&self) -> bool {
        match self {
            Snapshot::Whole(_) => false,
            Snapshot::Delta(_) => true,
            Snapshot::Later { delta, .. } => *delta,
        }
    }

    pub fn into_bytes(self) -> Result<Vec<u8>, EngineError> {
        match self {
            Snapshot::Whole(bytes) | Snapshot::Delta(bytes) => Ok(bytes),
            Snapshot::Later { encode, .. } => encode(),
        }
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Snapshot::Whole(bytes) => write!(f, "Whole({} bytes)", bytes.len()),
            Snapshot::Delta(bytes) => write!(f, "Delta({} bytes)", bytes.len()),
            Snapshot::Later { delta, .. } => write!(f, "Later {{ delta: {delta} }}"),
        }
    }
}

/// An operator's state, as a checkpoint takes it.
pub trait OperatorState {
    /// Called only while the dataflow is drained (no batch in flight), so
    /// the state is that of a prefix of the input.
    fn snapshot(&self) -> Result<Vec<u8>, EngineError>;

    /// A delta where `delta_allowed` and the operator keeps track of what
    /// changed (its last snapshot or restore being the base the delta
    /// applies to), else the whole state.
    fn snapshot_incremental(&self, _delta_allowed: bool) -> Result<Snapshot, EngineError> {
        self.snapshot().map(Snapshot::Whole)
    }
}

/// A sink's part in a checkpoint.
pub trait SinkState {
    /// What the sink held back since the last checkpoint, to be committed
    /// with this one (exactly-once sinks); at-least-once sinks flush here
    /// and return nothing.
    fn prepare(&self, checkpoint: u64) -> Result<Vec<SinkOutput>, EngineError>;

    /// The checkpoint is durable.
    fn complete(&self, _checkpoint: u64) -> Result<(), EngineError> {
        Ok(())
    }
}

struct Registry {
    mode: Mode,
    /// This worker's states in the checkpoint being restored (a whole
    /// state and the deltas on it, in order), taken by operators as they
    /// register.
    restore: HashMap<String, Vec<Vec<u8>>>,
    operators: Vec<(String, Rc<dyn OperatorState>)>,
    sinks: Vec<Rc<dyn SinkState>>,
    /// How many operators of each kind registered, for their ids.
    kinds: HashMap<String, usize>,
}

thread_local! {
    static REGISTRY: RefCell<Option<Registry>> = const { RefCell::new(None) };
    static PAUSED: Cell<bool> = const { Cell::new(false) };
    /// What the operators being built belong to (see `StateScope`).
    static STATE_SCOPE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Sources that found themselves paused, woken when the pause ends.
    static WAITING: RefCell<Vec<Activator>> = const { RefCell::new(Vec::new()) };
}

/// Makes this thread a checkpointed worker; `restore` is its share of the
/// checkpoint to resume from.
pub fn install(mode: Mode, restore: Option<Vec<(String, Vec<Vec<u8>>)>>) {
    REGISTRY.with(|r| {
        *r.borrow_mut() = Some(Registry {
            mode,
            restore: restore.unwrap_or_default().into_iter().collect(),
            operators: Vec::new(),
            sinks: Vec::new(),
            kinds: HashMap::new(),
        })
    });
    PAUSED.with(|p| p.set(false));
}

pub fn uninstall() {
    REGISTRY.with(|r| r.borrow_mut().take());
    PAUSED.with(|p| p.set(false));
    WAITING.with(|w| w.borrow_mut().clear());
}

/// The mode of the job this worker runs, if it is checkpointed.
pub fn mode() -> Option<Mode> {
    REGISTRY.with(|r| r.borrow().as_ref().map(|r| r.mode))
}

/// Names what the operators registered while it lives belong to, so that
/// their states' ids are `scope/kind#n` rather than `kind#n`: a planner
/// gives each plan node a scope naming the node and what it reads, so
/// that a changed plan's operators do not take the states of others of
/// their kind that happen to be built in the same order. Scopes nest; the
/// innermost names the operators.
pub struct StateScope {
    previous: Option<String>,
}

impl StateScope {
    pub fn enter(scope: String) -> Self {
        let previous = STATE_SCOPE.with(|s| s.borrow_mut().replace(scope));
        StateScope { previous }
    }
}

impl Drop for StateScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        STATE_SCOPE.with(|s| *s.borrow_mut() = previous);
    }
}

/// Registers an operator's state under `kind` and returns what to restore
/// it from, if the job resumes from a checkpoint that has it. Ids are
/// `kind#n` (in a `StateScope`, `scope/kind#n`) in the order operators
/// are built, which the same plan repeats.
/// A state kept as deltas is left unrestored (so the start is refused as
/// for a changed plan): only `register_incremental` takes those.
pub fn register(kind: &str, state: Rc<dyn OperatorState>) -> Option<Vec<u8>> {
    register_as(kind, state, |pieces| pieces.len() == 1)
        .and_then(|pieces| pieces.into_iter().next())
}

/// As `register`, for an operator whose `snapshot_incremental` gives
/// deltas: its whole state and the deltas since, in order.
pub fn register_incremental(kind: &str, state: Rc<dyn OperatorState>) -> Option<Vec<Vec<u8>>> {
    register_as(kind, state, |_| true)
}

fn register_as(
    kind: &str,
    state: Rc<dyn OperatorState>,
    takes: impl FnOnce(&[Vec<u8>]) -> bool,
) -> Option<Vec<Vec<u8>>> {
    REGISTRY.with(|r| {
        let mut borrow = r.borrow_mut();
        let registry = borrow.as_mut()?;
        let kind = match STATE_SCOPE.with(|s| s.borrow().clone()) {
            Some(scope) => format!("{scope}/{kind}"),
            None => kind.to_string(),
        };
        let n = registry.kinds.entry(kind.clone()).or_insert(0);
        let id = format!("{kind}#{n}");
        *n += 1;
        let restored = match registry.restore.get(&id) {
            Some(pieces) if takes(pieces) => registry.restore.remove(&id),
            _ => None,
        };
        registry.operators.push((id, state));
        restored
    })
}

pub fn register_sink(state: Rc<dyn SinkState>) {
    REGISTRY.with(|r| {
        if let Some(registry) = r.borrow_mut().as_mut() {
            registry.sinks.push(state);
        }
    });
}

/// Sources read nothing while paused.
pub fn paused() -> bool {
    PAUSED.with(Cell::get)
}

pub(crate) fn set_paused(paused: bool) {
    PAUSED.with(|p| p.set(paused));
    if !paused {
        for source in WAITING.with(|w| std::mem::take(&mut *w.borrow_mut())) {
            source.activate();
        }
    }
}

/// A paused source asks to be activated when the pause ends, so that it
/// reads again in the very next step.
pub fn resume_later(source: Activator) {
    WAITING.with(|w| w.borrow_mut().push(source));
}

/// States of the checkpoint no operator of this job took: the plan changed.
pub(crate) fn unrestored() -> Vec<String> {
    REGISTRY.with(|r| {
        let mut ids: Vec<String> = r
            .borrow()
            .as_ref()
            .map(|r| r.restore.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    })
}

fn registered<T>(pick: impl FnOnce(&Registry) -> T) -> Option<T> {
    REGISTRY.with(|r| r.borrow().as_ref().map(pick))
}

/// Every operator's snapshot; deltas only where `delta_allowed`.
pub(crate) fn snapshot_all(delta_allowed: bool) -> Result<Vec<(String, Snapshot)>, EngineError> {
    let operators = registered(|r| r.operators.clone()).unwrap_or_default();
    operators
        .into_iter()
        .map(|(id, state)| Ok((id, state.snapshot_incremental(delta_allowed)?)))
        .collect()
}

pub(crate) fn prepare_sinks(checkpoint: u64) -> Result<Vec<SinkOutput>, EngineError> {
    let sinks = registered(|r| r.sinks.clone()).unwrap_or_default();
    let mut outputs = Vec::new();
    for sink in sinks {
        outputs.extend(sink.prepare(checkpoint)?);
    }
    Ok(outputs)
}

pub(crate) fn complete_sinks(checkpoint: u64) -> Result<(), EngineError> {
    let sinks = registered(|r| r.sinks.clone()).unwrap_or_default();
    for sink in sinks {
        sink.complete(checkpoint)?;
    }
    Ok(())
}
