//! Connecting the processes of a cluster. Timely's own set-up prints
//! "awaiting connections" lines on stdout, where `runnel sql run` prints
//! rows, so Runnel opens the sockets itself (quietly, with a bound) and
//! hands them to timely's networking.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use timely::communication::Hooks;
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};

use crate::error::EngineError;

/// How long a process waits for the rest of its cluster.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
const RETRY: Duration = Duration::from_millis(100);

/// A connection id's high bit marks the second connection of a pair:
/// the one a checkpointed job's processes coordinate on, beside timely's.
const CONTROL: u64 = 1 << 63;

/// Builders for this process's workers, the guard that keeps the network
/// threads alive, and one control connection per other process.
pub type Networked = (
    Vec<AllocatorBuilder>,
    Box<dyn std::any::Any + Send>,
    Vec<Option<TcpStream>>,
);

pub fn connect(hosts: &[String], me: usize, threads: usize) -> Result<Networked, EngineError> {
    let (sockets, control) = sockets(hosts, me)?;
    let hooks = Hooks::default();
    let process =
        ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) =
        initialize_networking_from_sockets(process, sockets, me, threads, hooks)
            .map_err(|e| EngineError::Runtime(format!("cluster networking: {e}")))?;
    Ok((
        builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
        Box::new(guard),
        control,
    ))
}

type Sockets = Vec<Option<TcpStream>>;

/// Two streams per other process, in process order (`None` for this
/// one), timely's and the control one: this process dials those before
/// it and accepts those after it.
fn sockets(hosts: &[String], me: usize) -> Result<(Sockets, Sockets), EngineError> {
    let failed = |what: String| EngineError::Runtime(format!("cluster set-up: {what}"));
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let listener = TcpListener::bind(&hosts[me])
        .map_err(|e| failed(format!("cannot listen on {}: {e}", hosts[me])))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| failed(e.to_string()))?;
    let mut sockets: Sockets = (0..hosts.len()).map(|_| None).collect();
    let mut control: Sockets = (0..hosts.len()).map(|_| None).collect();
    for (peer, host) in hosts.iter().enumerate().take(me) {
        for tag in [0, CONTROL] {
            let mut stream = loop {
                match TcpStream::connect(host) {
                    Ok(stream) => break stream,
                    Err(e) if Instant::now() >= deadline => {
                        return Err(failed(format!("process {peer} at {host} unreachable: {e}")));
                    }
                    Err(_) => std::thread::sleep(RETRY),
                }
            };
            stream
                .write_all(&(me as u64 | tag).to_le_bytes())
                .map_err(|e| failed(e.to_string()))?;
            match tag {
                0 => sockets[peer] = Some(stream),
                _ => control[peer] = Some(stream),
            }
        }
    }
    let mut awaited = 2 * (hosts.len() - me - 1);
    while awaited > 0 {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .map_err(|e| failed(e.to_string()))?;
                let mut id = [0u8; 8];
                stream
                    .read_exact(&mut id)
                    .map_err(|e| failed(e.to_string()))?;
                let id = u64::from_le_bytes(id);
                let peer = (id & !CONTROL) as usize;
                let slot = match id & CONTROL {
                    0 => &mut sockets,
                    _ => &mut control,
                };
                if peer <= me || peer >= hosts.len() || slot[peer].is_some() {
                    return Err(failed(format!("unexpected process id {peer} connected")));
                }
                slot[peer] = Some(stream);
                awaited -= 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(failed(format!(
                        "{awaited} process(es) did not connect within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
                std::thread::sleep(RETRY);
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    }
    for stream in sockets.iter().chain(&control).flatten() {
        stream
            .set_nodelay(true)
            .map_err(|e| failed(e.to_string()))?;
    }
    Ok((sockets, control))
}
