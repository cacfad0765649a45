//! Kinesis Video Streams end to end: boto3 and the aws CLI on the control
//! plane, and real H.264 video made by ffmpeg through the media APIs
//! (`py/video_*.py`). These are the only tests where a request lives on
//! while both sides keep talking: PutMedia is a chunked upload answered by
//! acknowledgements as it goes, GetMedia a tail that never ends. boto3
//! cannot send PutMedia, so the scripts speak that HTTP themselves; what
//! comes back is checked frame by frame against what went in, by ffprobe,
//! and for HLS by hls.js in headless Chromium. A fragment acknowledged
//! PERSISTED is a promise, so one test breaks it the hard way with kill -9.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{RunnelServer, wait_bounded};
use crate::kinesis_e2e::{aws_cli, run_script, run_script_with};

fn script(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py")).join(name)
}

#[test]
fn boto3_video_control_plane() {
    let server = RunnelServer::start();
    run_script(&server, "video_control.py");
}

#[test]
fn put_media_then_list_fragments_get_media_and_fragment_lists() {
    let server = RunnelServer::start();
    run_script(&server, "video_media.py");
}

#[test]
fn put_media_with_relative_timecodes_stream_arns_and_unknown_size_clusters() {
    let server = RunnelServer::start();
    run_script(&server, "video_producers.py");
}

#[test]
fn get_clip_and_hls_sessions_play_in_ffprobe_and_ffmpeg() {
    let server = RunnelServer::start();
    run_script(&server, "video_playback.py");
}

#[test]
fn hls_mpeg_ts_sessions_play_in_ffprobe_and_ffmpeg() {
    let server = RunnelServer::start();
    run_script(&server, "video_hls_ts.py");
}

#[test]
fn malformed_put_media_gets_an_error_ack_and_harms_nothing() {
    let server = RunnelServer::start();
    run_script(&server, "video_malformed.py");
}

#[test]
fn fragment_metadata_comes_back_from_get_media_and_past_its_limits_is_refused() {
    let server = RunnelServer::start();
    run_script(&server, "video_metadata.py");
}

#[test]
fn a_put_media_connection_past_its_longest_life_gets_4003_and_keeps_its_fragments() {
    // Kinesis Video's 45 minutes, shortened for the test.
    let seconds = 4;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runnel.toml");
    std::fs::write(
        &config,
        format!("[video]\nput_media_max_connection_seconds = {seconds}\n"),
    )
    .unwrap();
    let server = RunnelServer::builder()
        .arg("--config")
        .arg(config.display().to_string())
        .start();
    run_script_with(
        &server,
        "video_connection_limit.py",
        &[seconds.to_string().as_str()],
    );
}

/// Complete lines of a file another process is appending to.
fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.matches('\n').count())
}

#[test]
fn persisted_fragments_survive_kill_9() {
    let mut server = RunnelServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let persisted = dir.path().join("persisted.jsonl");
    let put_log = dir.path().join("put.log");
    let log = File::create(&put_log).unwrap();
    // The producer runs beside the test, pacing its Clusters, so that the
    // kill lands while fragments are still arriving, not after the last.
    let mut producer = Command::new("python3")
        .arg(script("video_put.py"))
        .arg(server.url())
        .args(["crash", out.as_str()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run python3 (make deps installs boto3)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines_in(&persisted) < 3
        && Instant::now() < deadline
        && producer.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    let status = wait_bounded(&mut producer, Duration::from_secs(60)).unwrap_or_else(|| {
        let _ = producer.kill();
        let _ = producer.wait();
        panic!(
            "video_put.py did not end after the kill\n{}",
            std::fs::read_to_string(&put_log).unwrap_or_default()
        )
    });
    let output = std::fs::read_to_string(&put_log).unwrap_or_default();
    assert!(
        status.success() && output.lines().any(|l| l == "ok: video_put.py"),
        "video_put.py failed\n{output}\n--- server log\n{}",
        server.log()
    );
    let acknowledged = lines_in(&persisted);
    assert!(
        acknowledged >= 3,
        "only {acknowledged} fragments were acknowledged PERSISTED before the kill\n{output}\n--- server log\n{}",
        server.log()
    );

    let server = RunnelServer::builder().data_dir(&server.data_dir).start();
    run_script_with(&server, "video_check.py", &["crash", out.as_str()]);
}

fn aws(server: &RunnelServer, args: &[&str]) -> serde_json::Value {
    aws_cli(server, "kinesisvideo", args)
}

fn stream_names(server: &RunnelServer) -> Vec<String> {
    aws(server, &["list-streams"])["StreamInfoList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["StreamName"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_aws_cli_creates_lists_describes_and_deletes_video_streams() {
    let server = RunnelServer::start();
    let created = aws(
        &server,
        &[
            "create-stream",
            "--stream-name",
            "cli-cam",
            "--data-retention-in-hours",
            "24",
            "--media-type",
            "video/h264",
        ],
    );
    let arn = created["StreamARN"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:kinesisvideo:us-east-1:") && arn.contains(":stream/cli-cam/"),
        "{arn}"
    );
    assert_eq!(stream_names(&server), ["cli-cam"]);
    // AWS creates asynchronously: CREATING, then ACTIVE.
    let mut info = serde_json::Value::Null;
    for _ in 0..100 {
        info = aws(&server, &["describe-stream", "--stream-name", "cli-cam"])["StreamInfo"].clone();
        if info["Status"] == "ACTIVE" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(info["Status"], "ACTIVE", "{info}");
    assert_eq!(info["StreamARN"], arn.as_str());
    assert_eq!(info["DataRetentionInHours"], 24);
    assert_eq!(info["MediaType"], "video/h264");
    let endpoint = aws(
        &server,
        &[
            "get-data-endpoint",
            "--stream-arn",
            &arn,
            "--api-name",
            "GET_MEDIA",
        ],
    );
    assert_eq!(
        endpoint["DataEndpoint"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        server.url()
    );
    aws(&server, &["delete-stream", "--stream-arn", &arn]);
    // Deletion may take a moment too (DELETING).
    for _ in 0..100 {
        if stream_names(&server).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stream_names(&server), Vec::<String>::new());
}

#[test]
fn sql_jobs_read_fragments_and_frames_as_they_are_put() {
    let server = RunnelServer::start();
    run_script_with(&server, "video_sql.py", &[crate::harness::runnel_bin()]);
}

#[test]
fn get_images_decodes_keyframes_to_jpeg_and_png() {
    let server = RunnelServer::start();
    run_script(&server, "video_images.py");
}

#[test]
fn dash_sessions_play_in_ffprobe_and_ffmpeg() {
    let server = RunnelServer::start();
    run_script(&server, "video_dash.py");
}

/// Every playback GET answers a page of any origin, errors too (a player
/// can tell why it failed only if it may read the answer), and a
/// preflight is answered without a token.
#[test]
fn hls_and_dash_gets_and_preflights_are_open_to_other_origins() {
    let server = RunnelServer::start();
    let agent = crate::harness::agent();
    let origin = "http://127.0.0.1:1";
    for path in [
        "/hls/v1/getHLSMasterPlaylist.m3u8",
        "/hls/v1/getHLSMediaPlaylist.m3u8",
        "/hls/v1/getMP4InitFragment.mp4",
        "/hls/v1/getMP4MediaFragment.mp4",
        "/dash/v1/getDASHManifest.mpd",
        "/dash/v1/getMP4InitFragment.mp4",
        "/dash/v1/getMP4MediaFragment.mp4",
    ] {
        let url = format!("{}{path}?SessionToken=not-a-token", server.url());
        let got = agent.get(&url).header("Origin", origin).call().unwrap();
        assert_eq!(got.status().as_u16(), 403, "{path}");
        assert_eq!(
            got.headers().get("access-control-allow-origin").unwrap(),
            "*",
            "{path}"
        );
        let preflight = agent
            .options(&url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "x-player")
            .call()
            .unwrap();
        assert_eq!(preflight.status().as_u16(), 204, "{path}");
        let headers = preflight.headers();
        assert_eq!(headers.get("access-control-allow-origin").unwrap(), "*");
        assert_eq!(
            headers.get("access-control-allow-methods").unwrap(),
            "GET, OPTIONS"
        );
        assert_eq!(headers.get("access-control-allow-headers").unwrap(), "*");
    }
    // The AWS API itself is for SDKs, not pages: it stays same-origin.
    let health = agent
        .get(&format!("{}/v1/health", server.url()))
        .header("Origin", origin)
        .call()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        health
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// hls.js in Debian's headless Chromium, on a page of another origin,
/// plays an ON_DEMAND session (one more with AAC audio, which it must
/// decode) and a LIVE one while it is being put; dash.js plays the AAC
/// camera's DASH session and a LIVE one (`py/video_browser.py` drives
/// `js/play.mjs`).
#[test]
fn hls_js_and_dash_js_in_headless_chromium_play_on_demand_and_live_sessions() {
    let modules = crate::harness::browser_node_modules(&[
        "hls.js/dist/hls.min.js",
        "dashjs/dist/modern/umd/dash.all.min.js",
        "playwright-core/index.mjs",
    ]);
    let server = RunnelServer::start();
    run_script_with(&server, "video_browser.py", &[modules.as_str()]);
}

#[test]
fn sql_run_reads_a_video_stream_of_another_endpoint() {
    let server = RunnelServer::start();
    run_script_with(&server, "video_remote.py", &[crate::harness::runnel_bin()]);
}

/// curl, as a producer script would use it: a chunked upload that waits
/// for `100 Continue` before it sends the body.
#[test]
fn curl_put_media_with_expect_100_continue_is_acknowledged() {
    let server = RunnelServer::start();
    let created = crate::harness::agent()
        .post(&format!("{}/createStream", server.url()))
        .header("Content-Type", "application/json")
        .send(r#"{"StreamName": "curl-cam", "DataRetentionInHours": 1}"#)
        .unwrap();
    assert_eq!(created.status().as_u16(), 200);
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("cam.mkv");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=320x180:rate=30", "-t", "4"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args([
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
        .args(["-cluster_size_limit", "50000000"])
        .arg(&video)
        .status()
        .expect("ffmpeg (make deps installs it)");
    assert!(made.success());
    let output = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "60", "-X", "POST"])
        .arg(format!("{}/putMedia", server.url()))
        .args(["-H", "x-amzn-stream-name: curl-cam"])
        .args(["-H", "x-amzn-fragment-timecode-type: RELATIVE"])
        .args([
            "-H",
            "Expect: 100-continue",
            "-H",
            "Transfer-Encoding: chunked",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", video.display()))
        .output()
        .expect("curl");
    let acks = String::from_utf8_lossy(&output.stdout);
    let trace = String::from_utf8_lossy(&output.stderr);
    assert!(
        trace.contains("HTTP/1.1 100 Continue"),
        "no 100 Continue:\n{trace}"
    );
    let persisted = acks
        .lines()
        .filter(|l| l.contains(r#""EventType":"PERSISTED""#))
        .count();
    assert_eq!(
        persisted,
        2,
        "acks:\n{acks}\n--- server log\n{}",
        server.log()
    );
}

#[test]
fn a_newer_put_media_to_a_stream_ends_the_older_one() {
    let server = RunnelServer::start();
    run_script(&server, "video_takeover.py");
}

#[test]
fn aac_audio_plays_back_in_clips_hls_and_dash_beside_the_video() {
    let server = RunnelServer::start();
    run_script(&server, "video_audio.py");
}
