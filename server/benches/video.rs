//! Kinesis Video against a release `runnel server`, three ways:
//! - ingest: N cameras at once, each a PutMedia replaying a 2 Mbps H.264
//!   MKV (made by Debian's ffmpeg) at real time, and the time from a
//!   fragment's last byte sent to its `PERSISTED` acknowledgement, per
//!   stream count;
//! - GetClip of 60 s of that video beside `ffmpeg -c copy` remuxing the
//!   same MKV to MP4, in the same run;
//! - the `kinesis-video` SQL tables: a stored day of one camera's
//!   fragments (43,200) through a TUMBLE query, rows per second, for the
//!   fragments table and for the frames table.
//!
//! cargo bench -p runnel --bench video
//! Environment: BENCH_STREAMS (comma-separated counts, default
//! 50,100,200,300), BENCH_SECONDS (video per camera, default 20),
//! BENCH_PARTS (which of ingest,clip,sql to run; default all).

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

/// `seconds` of 720p H.264 at 2 Mbit/s, constant rate, a keyframe and a
/// Cluster every 2 s, timecodes from `offset` epoch seconds.
fn make_video(path: &std::path::Path, seconds: u64, offset: u64) -> Vec<u8> {
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
        // Live Matroska closes a Cluster at 32 KiB unless told otherwise.
        .args(["-cluster_size_limit", "50000000"])
        .args(["-output_ts_offset", &offset.to_string()])
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

/// One camera: its PutMedia, at real time when `paced`, and the
/// acknowledgements as they come.
fn camera(
    url: &str,
    stream: &str,
    data: Arc<Vec<u8>>,
    start_after: Duration,
    paced: bool,
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
         x-amzn-fragment-timecode-type: ABSOLUTE\r\nx-amzn-fragment-acknowledgment-required: 1\r\n\
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
            if let Some(wait) = due.checked_sub(started.elapsed()).filter(|_| paced) {
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

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn start_server() -> common::Target {
    common::start_runnel(&[], |url| {
        agent()
            .post(&format!("{url}/listStreams"))
            .send("{}")
            .is_ok()
    })
    .expect("start a release runnel server")
}

/// Puts `data` to a new stream as fast as the server takes it.
fn put_all(url: &str, stream: &str, data: Arc<Vec<u8>>) -> Outcome {
    create_stream(url, stream);
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    camera(url, stream, data, Duration::ZERO, false, outcome.clone());
    let outcome = std::mem::take(&mut *outcome.lock().expect("outcome"));
    assert_eq!(outcome.errors, 0, "putting {stream} failed");
    outcome
}

fn ingest(counts: &[usize], seconds: u64, dir: &std::path::Path) {
    let data = Arc::new(make_video(&dir.join("camera.mkv"), seconds, now_seconds()));
    let (_, ranges) = clusters(&data);
    println!(
        "\n## Ingest: cameras at real time\n\nvideo: {} fragments of {:.1} s, {:.2} Mbit/s (1280x720 H.264 from ffmpeg), {} bytes",
        ranges.len(),
        seconds as f64 / ranges.len().max(1) as f64,
        data.len() as f64 * 8.0 / seconds as f64 / 1e6,
        data.len()
    );
    println!(
        "\n| streams | fragments persisted | errors | p50 ms | p99 ms | max ms | ingest MB/s | server CPU s |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &count in counts {
        let target = start_server();
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
                    camera(&url, &format!("camera-{i}"), data, offset, true, outcome)
                })
            })
            .collect();
        for camera in cameras {
            let _ = camera.join();
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(target.child.id()) - cpu_before;
        let (mut latencies, errors, bytes) = outcome
            .lock()
            .map(|o| (o.latencies_ms.clone(), o.errors, o.bytes))
            .unwrap_or_default();
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

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    quantile(&samples, 0.5)
}

fn clip(dir: &std::path::Path) {
    const RUNS: usize = 5;
    let base = now_seconds() - 3600;
    let path = dir.join("minute.mkv");
    let data = Arc::new(make_video(&path, 60, base));
    let target = start_server();
    put_all(&target.url, "clip", data.clone());
    let body = format!(
        r#"{{"StreamName":"clip","ClipFragmentSelector":{{"FragmentSelectorType":"PRODUCER_TIMESTAMP","TimestampRange":{{"StartTimestamp":{base},"EndTimestamp":{}}}}}}}"#,
        base + 60
    );
    let mut clip_bytes = 0;
    let runnel: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let mut response = agent()
                .post(&format!("{}/getClip", target.url))
                .header("Content-Type", "application/json")
                .send(&body)
                .expect("GetClip");
            let bytes = response
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_vec()
                .expect("read the clip");
            clip_bytes = bytes.len();
            started.elapsed().as_secs_f64()
        })
        .collect();
    let out = dir.join("remux.mp4");
    let ffmpeg: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let status = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                .arg(&path)
                .args(["-c", "copy", "-f", "mp4"])
                .arg(&out)
                .status()
                .expect("ffmpeg");
            assert!(status.success());
            started.elapsed().as_secs_f64()
        })
        .collect();
    let (runnel, ffmpeg) = (median(runnel), median(ffmpeg));
    println!("\n## GetClip of 60 s beside ffmpeg -c copy (median of {RUNS})\n");
    println!("| what | seconds | output bytes |");
    println!("| --- | ---: | ---: |");
    println!("| GetClip (HTTP, 30 fragments, fMP4) | {runnel:.3} | {clip_bytes} |");
    println!(
        "| ffmpeg -c copy, MKV file to MP4 file | {ffmpeg:.3} | {} |",
        std::fs::metadata(&out).map_or(0, |m| m.len())
    );
    println!("\nffmpeg / GetClip: {:.2}x", ffmpeg / runnel);
}

/// A day of one camera: 43,200 Clusters of 2 s, each 30 small frames, the
/// first a keyframe. The SQL tables read the index and the blocks, never
/// decode, so the frames need not be real H.264.
fn synthetic_day(start_ms: u64) -> (Vec<u8>, usize, usize) {
    use runnel_video::mkv::ebml::{write_element, write_nested, write_uint};
    const FRAGMENTS: usize = 43_200;
    const FRAMES: usize = 30;
    let mut out = Vec::new();
    write_nested(&mut out, ebml::EBML, |out| {
        write_element(out, ebml::DOC_TYPE, b"matroska")
    });
    ebml::write_id(&mut out, ebml::SEGMENT);
    ebml::write_unknown_size(&mut out);
    write_nested(&mut out, ebml::INFO, |out| {
        write_uint(out, ebml::TIMECODE_SCALE, 1_000_000)
    });
    write_nested(&mut out, ebml::TRACKS, |out| {
        write_nested(out, ebml::TRACK_ENTRY, |out| {
            write_uint(out, ebml::TRACK_NUMBER, 1);
            write_element(out, ebml::CODEC_ID, b"V_MPEG4/ISO/AVC");
        });
    });
    for fragment in 0..FRAGMENTS {
        write_nested(&mut out, ebml::CLUSTER, |out| {
            write_uint(out, ebml::TIMECODE, start_ms + 2000 * fragment as u64);
            for frame in 0..FRAMES {
                let mut block = vec![0x81];
                block.extend_from_slice(&((frame * 66) as i16).to_be_bytes());
                block.push(if frame == 0 { 0x80 } else { 0 });
                block.extend_from_slice(&[0u8; 64]);
                write_element(out, ebml::SIMPLE_BLOCK, &block);
            }
        });
    }
    (out, FRAGMENTS, FRAGMENTS * FRAMES)
}

fn job_figures(url: &str, id: &str) -> (u64, u64) {
    let job: serde_json::Value = agent()
        .get(&format!("{url}/v1/jobs/{id}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_json().ok())
        .unwrap_or_default();
    let read = job["sources"][0]["rows_read"].as_u64().unwrap_or(0);
    let written = job["sinks"][0]["rows_written"].as_u64().unwrap_or(0);
    (read, written)
}

fn sql() {
    let start_ms = (now_seconds() - 2 * 86_400) / 86_400 * 86_400 * 1000;
    let (data, fragments, frames) = synthetic_day(start_ms);
    let target = start_server();
    let started = Instant::now();
    put_all(&target.url, "day", Arc::new(data));
    let put_seconds = started.elapsed().as_secs_f64();
    println!("\n## The kinesis-video tables: a stored day of one camera\n");
    println!(
        "stored {fragments} fragments ({frames} frames) through one PutMedia in {put_seconds:.1} s\n"
    );
    println!("| table | query | rows | windows | seconds | rows/s |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let cases = [
        (
            "fragments",
            "producer_timestamp TIMESTAMP(3), bytes BIGINT, WATERMARK FOR producer_timestamp AS producer_timestamp",
            "TUMBLE(TABLE day, DESCRIPTOR(producer_timestamp), INTERVAL '1' HOUR)",
            "COUNT(*), SUM(bytes)",
            fragments,
            23u64,
            "TUMBLE 1 h COUNT(*), SUM(bytes)",
        ),
        (
            "frames",
            "ts TIMESTAMP(3), bytes INT, keyframe BOOLEAN, WATERMARK FOR ts AS ts",
            "TUMBLE(TABLE day, DESCRIPTOR(ts), INTERVAL '1' MINUTE)",
            "COUNT(*), SUM(CAST(bytes AS BIGINT))",
            frames,
            1439u64,
            "TUMBLE 1 min COUNT(*), SUM(bytes)",
        ),
    ];
    for (table, columns, window, aggregates, rows, windows, label) in cases {
        let sql = format!(
            "CREATE TABLE day ({columns}) WITH ('connector' = 'kinesis-video', 'stream' = 'day', 'table' = '{table}');\n\
             CREATE TABLE out (window_start TIMESTAMP(3), n BIGINT, total BIGINT) WITH ('connector' = 'blackhole');\n\
             INSERT INTO out SELECT window_start, {aggregates} FROM TABLE({window}) GROUP BY window_start, window_end;"
        );
        let started = Instant::now();
        let submitted: serde_json::Value = agent()
            .post(&format!("{}/v1/jobs", target.url))
            .send_json(serde_json::json!({"sql": sql, "parallelism": 1}))
            .and_then(|mut r| r.body_mut().read_json())
            .expect("submit the job");
        let id = submitted["id"].as_str().expect("a job id").to_string();
        // Polled often: the figure is the time until the job is through.
        let deadline = Instant::now() + Duration::from_secs(600);
        while job_figures(&target.url, &id) < (rows as u64, windows) {
            assert!(Instant::now() < deadline, "the {table} job did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "| {table} | {label} | {rows} | {windows} | {seconds:.2} | {:.0} |",
            rows as f64 / seconds
        );
        let _ = agent()
            .post(&format!("{}/v1/jobs/{id}/stop", target.url))
            .send_empty();
    }
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
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "ingest,clip,sql".into());
    let dir = tempfile::tempdir().expect("tempdir");
    if parts.contains("ingest") {
        ingest(&counts, seconds, dir.path());
    }
    if parts.contains("clip") {
        clip(dir.path());
    }
    if parts.contains("sql") {
        sql();
    }
}
