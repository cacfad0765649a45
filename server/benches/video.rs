//! Kinesis Video ingest: N cameras at once, each a PutMedia replaying a
//! 2 Mbps H.264 MKV (made by Debian's ffmpeg) at real time against a
//! release `runnel server`, and the time from a fragment's last byte sent
//! to its `PERSISTED` acknowledgement, per stream count.
//!
//! cargo bench -p runnel --bench video
//! Environment: BENCH_STREAMS (comma-separated counts, default
//! 50,100,200,300), BENCH_SECONDS (video per camera, default 20).

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{agent, quantile};
use runnel_video::mkv::ebml::{self, Vint};

/// A producer sends each fragment in this many pieces spread over its
/// duration, as a camera does.
const PIECES_PER_FRAGMENT: usize = 10;
const FRAGMENT: Duration = Duration::from_secs(2);

fn make_video(path: &std::path::Path, seconds: u64) -> Vec<u8> {
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=1280x720:rate=30")
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-b:v", "2M", "-minrate", "2M", "-maxrate", "2M", "-bufsize", "1M",
        ])
        .args(["-x264-params", "nal-hrd=cbr:force-cfr=1"])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-bf",
            "0",
        ])
        .args([
            "-f",
            "matroska",
            "-live",
            "1",
            "-cluster_time_limit",
            "2100",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg (Debian's ffmpeg package) makes the camera's video");
    assert!(status.success(), "ffmpeg failed");
    std::fs::read(path).expect("read the video")
}

/// The byte ranges of the header and of each Cluster.
fn clusters(data: &[u8]) -> (usize, Vec<(usize, usize)>) {
    let mut at = 0;
    let mut header_end = 0;
    let mut ranges = Vec::new();
    while at < data.len() {
        let Vint::Done(id, id_len) = ebml::read_id(&data[at..]) else {
            break;
        };
        let Vint::Done(size, size_len) = ebml::read_size(&data[at + id_len..]) else {
            break;
        };
        let head = id_len + size_len;
        match id as u32 {
            ebml::SEGMENT => at += head,
            ebml::CLUSTER => {
                if header_end == 0 {
                    header_end = at;
                }
                ranges.push((at, at + head + size as usize));
                at += head + size as usize;
            }
            _ => at += head + size as usize,
        }
    }
    (header_end, ranges)
}

#[derive(Default)]
struct Outcome {
    latencies_ms: Vec<f64>,
    errors: usize,
    bytes: usize,
}

/// One camera: its PutMedia, paced, and the acknowledgements as they come.
fn camera(
    url: &str,
    stream: &str,
    data: Arc<Vec<u8>>,
    start_after: Duration,
    outcome: Arc<Mutex<Outcome>>,
) {
    std::thread::sleep(start_after);
    let address = url.trim_start_matches("http://");
    let Ok(mut socket) = TcpStream::connect(address) else {
        outcome.lock().map(|mut o| o.errors += 1).ok();
        return;
    };
    let _ = socket.set_nodelay(true);
    let _ = socket.set_read_timeout(Some(Duration::from_secs(60)));
    let request = format!(
        "POST /putMedia HTTP/1.1\r\nHost: {address}\r\nx-amzn-stream-name: {stream}\r\n\
         x-amzn-fragment-timecode-type: RELATIVE\r\nx-amzn-fragment-acknowledgment-required: 1\r\n\
         Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let (header_end, ranges) = clusters(&data);
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; ranges.len()]));
    let reader = {
        let socket = socket.try_clone().expect("clone the socket");
        let sent_at = sent_at.clone();
        let outcome = outcome.clone();
        let fragments = ranges.len();
        std::thread::spawn(move || {
            let mut persisted = 0;
            for line in BufReader::new(socket).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"ERROR\"") {
                    outcome.lock().map(|mut o| o.errors += 1).ok();
                    break;
                }
                if line.contains("\"PERSISTED\"") {
                    let sent = sent_at
                        .lock()
                        .ok()
                        .and_then(|s| s.get(persisted).copied().flatten());
                    if let Some(sent) = sent {
                        let ms = sent.elapsed().as_secs_f64() * 1000.0;
                        outcome.lock().map(|mut o| o.latencies_ms.push(ms)).ok();
                    }
                    persisted += 1;
                    if persisted == fragments {
                        break;
                    }
                }
            }
            if persisted < fragments {
                outcome
                    .lock()
                    .map(|mut o| o.errors += fragments - persisted)
                    .ok();
            }
        })
    };
    let request_sent = socket.write_all(request.as_bytes()).is_ok();
    // A chunk of the body; the empty one ends it.
    let mut send = |bytes: &[u8]| -> bool {
        let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
        chunk.extend_from_slice(bytes);
        chunk.extend_from_slice(b"\r\n");
        socket.write_all(&chunk).is_ok()
    };
    let started = Instant::now();
    let mut ok = request_sent && send(&data[..header_end]);
    for (i, (start, end)) in ranges.iter().enumerate() {
        let cluster = &data[*start..*end];
        let piece = cluster.len().div_ceil(PIECES_PER_FRAGMENT);
        for (k, part) in cluster.chunks(piece.max(1)).enumerate() {
            // Real time: piece k of fragment i leaves when the camera has
            // filmed it.
            let due = FRAGMENT * i as u32 + FRAGMENT * (k as u32 + 1) / PIECES_PER_FRAGMENT as u32;
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            ok = ok && send(part);
        }
        if let Ok(mut sent) = sent_at.lock() {
            sent[i] = Some(Instant::now());
        }
        outcome.lock().map(|mut o| o.bytes += cluster.len()).ok();
    }
    ok = ok && send(&[]);
    if !ok {
        outcome.lock().map(|mut o| o.errors += 1).ok();
    }
    let _ = reader.join();
}

fn create_stream(url: &str, name: &str) {
    let response = agent()
        .post(&format!("{url}/createStream"))
        .header("Content-Type", "application/json")
        .send(format!(
            r#"{{"StreamName":"{name}","DataRetentionInHours":1}}"#
        ));
    assert!(response.is_ok(), "CreateStream {name}: {response:?}");
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

fn main() {
    let counts: Vec<usize> = std::env::var("BENCH_STREAMS")
        .unwrap_or_else(|_| "50,100,200,300".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = Arc::new(make_video(&dir.path().join("camera.mkv"), seconds));
    let (_, ranges) = clusters(&data);
    let mbps = data.len() as f64 * 8.0 / seconds as f64 / 1e6;
    println!(
        "video: {} fragments of 2 s, {:.2} Mbit/s (1280x720 H.264 from ffmpeg), {} bytes",
        ranges.len(),
        mbps,
        data.len()
    );
    println!(
        "| streams | fragments persisted | errors | p50 ms | p99 ms | max ms | ingest MB/s | server CPU s |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for count in counts {
        let target = common::start_runnel(&[], |url| {
            agent()
                .post(&format!("{url}/listStreams"))
                .send("{}")
                .is_ok()
        })
        .expect("start a release runnel server");
        for i in 0..count {
            create_stream(&target.url, &format!("camera-{i}"));
        }
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let cpu_before = cpu_seconds(target.child.id());
        let started = Instant::now();
        let cameras: Vec<_> = (0..count)
            .map(|i| {
                let (url, data, outcome) = (target.url.clone(), data.clone(), outcome.clone());
                // Cameras start spread over one fragment, as real ones do.
                let offset = FRAGMENT * i as u32 / count as u32;
                std::thread::spawn(move || {
                    camera(&url, &format!("camera-{i}"), data, offset, outcome)
                })
            })
            .collect();
        for camera in cameras {
            let _ = camera.join();
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(target.child.id()) - cpu_before;
        let outcome = outcome
            .lock()
            .map(|o| (o.latencies_ms.clone(), o.errors, o.bytes))
            .unwrap_or_default();
        let (mut latencies, errors, bytes) = outcome;
        latencies.sort_by(f64::total_cmp);
        println!(
            "| {count} | {} | {errors} | {:.1} | {:.1} | {:.1} | {:.1} | {cpu:.1} |",
            latencies.len(),
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
            bytes as f64 / wall / 1e6,
        );
    }
}
