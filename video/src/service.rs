//! The video service: streams, one PutMedia writer per stream, fragment
//! reads for playback, and retention.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};
use tokio::sync::watch;

use crate::VideoError;
use crate::mkv::{Fragment, Header, Limits, ProducerTag};
use crate::store::model::{
    FragmentMeta, IndexedFrame, NEXT_STREAM_ID_KEY, StreamMeta, fragment_key, next_seq_key,
    pack_frames, seq_of_key,
};
use crate::store::segments::{self, SegmentWriter};

pub const COLUMN_FAMILIES: &[&str] = &["video.streams", "video.fragments", "video.headers"];
const STREAMS: &str = "video.streams";
const FRAGMENTS: &str = "video.fragments";
const HEADERS: &str = "video.headers";

/// Kinesis Video's ceiling on `DataRetentionInHours` (ten years).
pub const MAX_RETENTION_HOURS: u32 = 87_600;
/// GetMedia's concurrent readers per stream.
pub const MAX_READERS: usize = 3;

pub struct VideoConfig {
    pub region: String,
    pub account: String,
    /// Where segment files go: a directory per stream below it.
    pub root: PathBuf,
    pub limits: Limits,
    /// How long a stream with `DataRetentionInHours` 0 keeps fragments,
    /// so live readers a little behind still find them.
    pub live_window_ms: u64,
    /// Fragments are encrypted at rest under it (the server's
    /// `streams.encryption_key`).
    pub encryption_key: Option<[u8; runnel_store::crypto::KEY_LEN]>,
    /// How long one PutMedia connection may last before it is ended with
    /// `ErrorId` 4003.
    pub max_put_connection: std::time::Duration,
}

/// How long Kinesis Video lets a PutMedia connection last before ending it
/// with 4003 (MAX_CONNECTION_DURATION_REACHED). The PutMedia reference
/// names the error without a figure; the quotas page has producers renew
/// their streaming token with GetDataEndpoint every 45 minutes, and
/// producers' logs show 4003 after 45 minutes of streaming.
pub const MAX_PUT_CONNECTION: std::time::Duration = std::time::Duration::from_secs(45 * 60);

impl VideoConfig {
    pub fn new(root: PathBuf) -> Self {
        VideoConfig {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            root,
            limits: Limits::default(),
            live_window_ms: 5 * 60 * 1000,
            encryption_key: None,
            max_put_connection: MAX_PUT_CONNECTION,
        }
    }
}

pub struct CreateStream {
    pub name: String,
    pub device_name: Option<String>,
    pub media_type: Option<String>,
    pub kms_key_id: Option<String>,
    pub retention_hours: u32,
    pub tags: BTreeMap<String, String>,
}

pub enum StreamRef {
    Name(String),
    Arn(String),
}

struct Writer {
    segments: SegmentWriter,
    next_seq: u64,
    last_server_ms: u64,
    header: Option<(u64, Arc<Header>)>,
    next_header: u64,
}

pub struct Stream {
    id: u64,
    meta: Mutex<StreamMeta>,
    writer: Mutex<Writer>,
    /// The next sequence number once a fragment is durable: GetMedia's
    /// live tail waits on it.
    persisted: watch::Sender<u64>,
    put_generation: AtomicU64,
    readers: AtomicUsize,
    deleted: AtomicBool,
    headers: Mutex<HashMap<u64, Arc<Header>>>,
}

impl Stream {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn meta(&self) -> StreamMeta {
        lock(&self.meta).clone()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.persisted.subscribe()
    }

    /// The sequence after the last persisted fragment: the next one's.
    pub fn persisted_until(&self) -> u64 {
        *self.persisted.borrow()
    }

    /// A GetMedia reader's place among the stream's few; `None` when all
    /// are taken.
    pub fn acquire_reader(self: &Arc<Self>) -> Option<ReaderGuard> {
        let mut current = self.readers.load(Ordering::SeqCst);
        loop {
            if current >= MAX_READERS {
                return None;
            }
            match self.readers.compare_exchange(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(ReaderGuard(self.clone())),
                Err(now) => current = now,
            }
        }
    }
}

pub struct ReaderGuard(Arc<Stream>);

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take every later request down with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn new_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..20].to_string()
}

fn synced() -> WriteOptions {
    let mut write = WriteOptions::default();
    write.set_sync(true);
    write
}

pub struct Video {
    db: Arc<DB>,
    config: VideoConfig,
    streams: RwLock<HashMap<String, Arc<Stream>>>,
    next_id: Mutex<u64>,
}

impl Video {
    pub fn open(db: Arc<DB>, config: VideoConfig) -> Result<Self, VideoError> {
        let video = Video {
            db,
            config,
            streams: RwLock::new(HashMap::new()),
            next_id: Mutex::new(1),
        };
        let cf = video.cf(STREAMS)?;
        let mut loaded = HashMap::new();
        for item in video.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            if key.first() == Some(&0) {
                if &key[..] == NEXT_STREAM_ID_KEY {
                    *lock(&video.next_id) = read_u64(&value)?;
                }
                continue;
            }
            let meta: StreamMeta = serde_json::from_slice(&value).map_err(|e| {
                VideoError::Corrupt(format!("stream {}: {e}", String::from_utf8_lossy(&key)))
            })?;
            let next_seq = match video.db.get_cf(cf, next_seq_key(meta.id))? {
                Some(bytes) => read_u64(&bytes)?,
                None => 0,
            };
            let next_header = video.last_key_seq(HEADERS, meta.id)?.map_or(0, |n| n + 1);
            let stream = video.stream_state(meta, next_seq, next_header);
            loaded.insert(stream.meta().name.clone(), stream);
        }
        *video
            .streams
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(video)
    }

    pub fn config(&self) -> &VideoConfig {
        &self.config
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, VideoError> {
        self.db.cf_handle(name).ok_or_else(|| {
            VideoError::Store(runnel_store::StoreError::UnknownColumnFamily(name.into()))
        })
    }

    fn stream_state(&self, meta: StreamMeta, next_seq: u64, next_header: u64) -> Arc<Stream> {
        let id = meta.id;
        Arc::new(Stream {
            id,
            meta: Mutex::new(meta),
            writer: Mutex::new(Writer {
                segments: SegmentWriter::new(&self.config.root, id, self.config.encryption_key),
                next_seq,
                last_server_ms: 0,
                header: None,
                next_header,
            }),
            persisted: watch::channel(next_seq).0,
            put_generation: AtomicU64::new(0),
            readers: AtomicUsize::new(0),
            deleted: AtomicBool::new(false),
            headers: Mutex::new(HashMap::new()),
        })
    }

    /// The highest sequence under `stream_id` in a column family keyed as
    /// fragments are.
    fn last_key_seq(&self, cf: &str, stream_id: u64) -> Result<Option<u64>, VideoError> {
        let cf = self.cf(cf)?;
        let upper = fragment_key(stream_id, u64::MAX);
        let mut iter = self
            .db
            .iterator_cf(cf, IteratorMode::From(&upper, Direction::Reverse));
        match iter.next() {
            Some(item) => {
                let (key, _) = item?;
                Ok((key.get(..8) == Some(&stream_id.to_be_bytes()[..]))
                    .then(|| seq_of_key(&key))
                    .flatten())
            }
            None => Ok(None),
        }
    }

    fn streams_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Stream>>> {
        self.streams
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn arn(&self, name: &str, created_ms: u64) -> String {
        format!(
            "arn:aws:kinesisvideo:{}:{}:stream/{name}/{created_ms}",
            self.config.region, self.config.account
        )
    }

    pub fn create_stream(&self, request: CreateStream) -> Result<StreamMeta, VideoError> {
        if request.retention_hours > MAX_RETENTION_HOURS {
            return Err(VideoError::InvalidArgument(format!(
                "DataRetentionInHours must be at most {MAX_RETENTION_HOURS}"
            )));
        }
        let mut streams = self
            .streams
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if streams.contains_key(&request.name) {
            return Err(VideoError::InUse(format!(
                "The stream {} already exists",
                request.name
            )));
        }
        let mut next_id = lock(&self.next_id);
        let id = *next_id;
        let created_ms = now_ms();
        let meta = StreamMeta {
            id,
            arn: self.arn(&request.name, created_ms),
            name: request.name,
            device_name: request.device_name,
            media_type: request.media_type,
            kms_key_id: request.kms_key_id.unwrap_or_else(|| {
                format!(
                    "arn:aws:kms:{}:{}:alias/aws/kinesisvideo",
                    self.config.region, self.config.account
                )
            }),
            version: new_version(),
            created_ms,
            retention_hours: request.retention_hours,
            tags: request.tags,
        };
        let cf = self.cf(STREAMS)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, meta.name.as_bytes(), encode(&meta));
        batch.put_cf(cf, NEXT_STREAM_ID_KEY, (id + 1).to_be_bytes());
        self.db.write_opt(batch, &synced())?;
        *next_id = id + 1;
        streams.insert(meta.name.clone(), self.stream_state(meta.clone(), 0, 0));
        Ok(meta)
    }

    pub fn stream(&self, reference: &StreamRef) -> Result<Arc<Stream>, VideoError> {
        let streams = self.streams_read();
        let found = match reference {
            StreamRef::Name(name) => streams.get(name).cloned(),
            StreamRef::Arn(arn) => streams
                .values()
                .find(|s| lock(&s.meta).arn == *arn)
                .cloned(),
        };
        found.ok_or_else(|| {
            let shown = match reference {
                StreamRef::Name(name) => name,
                StreamRef::Arn(arn) => arn,
            };
            VideoError::NotFound(format!("The requested stream {shown} was not found"))
        })
    }

    /// Streams by name, those whose names begin with `prefix` if given.
    pub fn list(&self, prefix: Option<&str>) -> Vec<StreamMeta> {
        let mut metas: Vec<StreamMeta> = self
            .streams_read()
            .values()
            .map(|s| s.meta())
            .filter(|m| prefix.is_none_or(|p| m.name.starts_with(p)))
            .collect();
        metas.sort_by(|a, b| a.name.cmp(&b.name));
        metas
    }

    /// Applies `change` to a stream's metadata if `version` is current (or
    /// not given), storing the result under a new version.
    pub fn update(
        &self,
        reference: &StreamRef,
        version: Option<&str>,
        change: impl FnOnce(&mut StreamMeta) -> Result<(), VideoError>,
        bump_version: bool,
    ) -> Result<StreamMeta, VideoError> {
        let stream = self.stream(reference)?;
        let mut meta = lock(&stream.meta);
        check_version(&meta, version)?;
        let mut updated = meta.clone();
        change(&mut updated)?;
        if bump_version {
            updated.version = new_version();
        }
        self.db.put_cf_opt(
            self.cf(STREAMS)?,
            updated.name.as_bytes(),
            encode(&updated),
            &synced(),
        )?;
        *meta = updated.clone();
        Ok(updated)
    }

    pub fn delete_stream(
        &self,
        reference: &StreamRef,
        version: Option<&str>,
    ) -> Result<(), VideoError> {
        let stream = self.stream(reference)?;
        let meta = stream.meta();
        check_version(&meta, version)?;
        let mut streams = self
            .streams
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The writer lock keeps a PutMedia from indexing a fragment after
        // the index is gone.
        let _writer = lock(&stream.writer);
        stream.deleted.store(true, Ordering::SeqCst);
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(STREAMS)?, meta.name.as_bytes());
        batch.delete_cf(self.cf(STREAMS)?, next_seq_key(meta.id));
        for cf in [FRAGMENTS, HEADERS] {
            batch.delete_range_cf(
                self.cf(cf)?,
                fragment_key(meta.id, 0),
                fragment_key(meta.id + 1, 0),
            );
        }
        self.db.write_opt(batch, &synced())?;
        streams.remove(&meta.name);
        segments::remove_stream(&self.config.root, meta.id)?;
        // Wakes live readers so they see the stream is gone.
        stream.persisted.send_modify(|_| {});
        Ok(())
    }

    /// Starts a PutMedia on `stream`, ending any older one.
    pub fn begin_put(&self, stream: &Arc<Stream>) -> PutSession {
        let generation = stream.put_generation.fetch_add(1, Ordering::SeqCst) + 1;
        PutSession {
            stream: stream.clone(),
            generation,
        }
    }

    /// Gives the fragment that just began its number, before it is
    /// complete (PutMedia's `BUFFERING` names it).
    pub fn reserve_seq(&self, session: &PutSession) -> u64 {
        let mut writer = lock(&session.stream.writer);
        let seq = writer.next_seq;
        writer.next_seq += 1;
        seq
    }

    /// Stores a complete fragment durably (payload synced, then the index
    /// entry synced) under the sequence `reserve_seq` gave it.
    pub fn persist(
        &self,
        session: &PutSession,
        seq: u64,
        fragment: &Fragment,
        producer_ms: u64,
        server_ms: u64,
    ) -> Result<FragmentMeta, VideoError> {
        let stream = &session.stream;
        let mut writer = lock(&stream.writer);
        if stream.is_deleted() {
            return Err(VideoError::NotActive(format!(
                "The stream {} was deleted",
                stream.meta().name
            )));
        }
        let mut batch = WriteBatch::default();
        let header_no = match &writer.header {
            Some((no, header)) if **header == *fragment.header => *no,
            _ => {
                let no = writer.next_header;
                batch.put_cf(
                    self.cf(HEADERS)?,
                    fragment_key(stream.id, no),
                    encode(&*fragment.header),
                );
                writer.next_header += 1;
                writer.header = Some((no, fragment.header.clone()));
                lock(&stream.headers).insert(no, fragment.header.clone());
                no
            }
        };
        let tags = if fragment.tags.is_empty() {
            Vec::new()
        } else {
            crate::mkv::write::tags_element(&fragment.tags)
        };
        let tags_len = u32::try_from(tags.len())
            .map_err(|_| VideoError::InvalidArgument("fragment metadata too large".into()))?;
        let at = if tags.is_empty() {
            writer.segments.append(&fragment.body)?
        } else {
            // One record, so the metadata is synced and encrypted with the
            // video it describes.
            writer
                .segments
                .append(&[&tags[..], &fragment.body[..]].concat())?
        };
        let encrypted = writer.segments.encrypts();
        let server_ms = server_ms.max(writer.last_server_ms + 1);
        let meta = FragmentMeta {
            seq,
            at,
            header: header_no,
            timecode_ms: fragment.timecode_ms,
            producer_ms,
            server_ms,
            duration_ms: fragment.duration_ms.max(0) as u64,
            frames: fragment.frames.len() as u32,
            keyframes: fragment.frames.iter().filter(|f| f.keyframe).count() as u32,
            frame_index: pack_frames(fragment.frames.iter().map(|f| IndexedFrame {
                offset_ms: i32::try_from(f.timecode_ms - fragment.timecode_ms).unwrap_or(i32::MAX),
                len: f.len,
                keyframe: f.keyframe,
                track: u8::try_from(f.track).unwrap_or(u8::MAX),
            })),
            encrypted,
            tags_len,
        };
        batch.put_cf(
            self.cf(FRAGMENTS)?,
            fragment_key(stream.id, seq),
            encode(&meta),
        );
        batch.put_cf(
            self.cf(STREAMS)?,
            next_seq_key(stream.id),
            writer.next_seq.to_be_bytes(),
        );
        self.db.write_opt(batch, &synced())?;
        writer.last_server_ms = server_ms;
        drop(writer);
        stream.persisted.send_if_modified(|next| {
            let advanced = seq + 1 > *next;
            *next = (*next).max(seq + 1);
            advanced
        });
        Ok(meta)
    }

    /// Up to `limit` fragments of `stream` from sequence `from` on.
    pub fn fragments(
        &self,
        stream: &Stream,
        from: u64,
        limit: usize,
    ) -> Result<Vec<FragmentMeta>, VideoError> {
        self.fragments_from(stream, from)?.take(limit).collect()
    }

    /// The newest `limit` fragments of `stream`, oldest first.
    pub fn latest_fragments(
        &self,
        stream: &Stream,
        limit: usize,
    ) -> Result<Vec<FragmentMeta>, VideoError> {
        let upper = fragment_key(stream.id, u64::MAX);
        let mut out = self
            .scan(stream, upper, Direction::Reverse)?
            .take(limit)
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// `stream`'s fragments from sequence `from` on, in order, read from
    /// the index as they are asked for.
    pub fn fragments_from<'a>(
        &'a self,
        stream: &Stream,
        from: u64,
    ) -> Result<impl Iterator<Item = Result<FragmentMeta, VideoError>> + 'a, VideoError> {
        self.scan(stream, fragment_key(stream.id, from), Direction::Forward)
    }

    /// The sequence of `stream`'s first fragment that `wanted` takes, or,
    /// when none does, the sequence the next fragment will have.
    pub fn first_fragment_where(
        &self,
        stream: &Stream,
        wanted: impl Fn(&FragmentMeta) -> bool,
    ) -> Result<u64, VideoError> {
        for fragment in self.fragments_from(stream, 0)? {
            let fragment = fragment?;
            if wanted(&fragment) {
                return Ok(fragment.seq);
            }
        }
        Ok(stream.persisted_until())
    }

    fn scan<'a>(
        &'a self,
        stream: &Stream,
        from: [u8; 16],
        direction: Direction,
    ) -> Result<impl Iterator<Item = Result<FragmentMeta, VideoError>> + 'a, VideoError> {
        let prefix = stream.id.to_be_bytes();
        let items = self
            .db
            .iterator_cf(self.cf(FRAGMENTS)?, IteratorMode::From(&from, direction));
        Ok(items
            .take_while(move |item| {
                item.as_ref()
                    .map_or(true, |(key, _)| key.get(..8) == Some(&prefix[..]))
            })
            .map(|item| decode(&item?.1)))
    }

    pub fn fragment(&self, stream: &Stream, seq: u64) -> Result<Option<FragmentMeta>, VideoError> {
        match self
            .db
            .get_cf(self.cf(FRAGMENTS)?, fragment_key(stream.id, seq))?
        {
            Some(value) => Ok(Some(decode(&value)?)),
            None => Ok(None),
        }
    }

    pub fn header(&self, stream: &Stream, no: u64) -> Result<Arc<Header>, VideoError> {
        if let Some(header) = lock(&stream.headers).get(&no) {
            return Ok(header.clone());
        }
        let value = self
            .db
            .get_cf(self.cf(HEADERS)?, fragment_key(stream.id, no))?
            .ok_or_else(|| {
                VideoError::Corrupt(format!("header {no} of stream {} is missing", stream.id))
            })?;
        let header: Arc<Header> = Arc::new(decode(&value)?);
        lock(&stream.headers).insert(no, header.clone());
        Ok(header)
    }

    /// A fragment's header and Cluster body, read from its segment.
    pub fn read(
        &self,
        stream: &Stream,
        fragment: &FragmentMeta,
    ) -> Result<(Arc<Header>, Vec<u8>), VideoError> {
        let (header, mut stored) = self.read_stored(stream, fragment)?;
        let tags_len = tags_len(fragment, &stored)?;
        stored.drain(..tags_len);
        Ok((header, stored))
    }

    /// A fragment's header, Cluster body and its producer's metadata.
    pub fn read_tagged(
        &self,
        stream: &Stream,
        fragment: &FragmentMeta,
    ) -> Result<TaggedFragment, VideoError> {
        let (header, mut stored) = self.read_stored(stream, fragment)?;
        let tags_len = tags_len(fragment, &stored)?;
        let tags = if tags_len == 0 {
            Vec::new()
        } else {
            stored_tags(&stored[..tags_len])?
        };
        stored.drain(..tags_len);
        Ok(TaggedFragment {
            header,
            body: stored,
            tags,
        })
    }

    /// What the segment holds for a fragment: its metadata, then its body.
    fn read_stored(
        &self,
        stream: &Stream,
        fragment: &FragmentMeta,
    ) -> Result<(Arc<Header>, Vec<u8>), VideoError> {
        let header = self.header(stream, fragment.header)?;
        let key = match (fragment.encrypted, &self.config.encryption_key) {
            (false, _) => None,
            (true, Some(key)) => Some(key),
            (true, None) => {
                return Err(VideoError::Corrupt(
                    "the fragment is encrypted and no encryption key is configured (streams.encryption_key)".into(),
                ));
            }
        };
        let body = segments::read(&self.config.root, stream.id, fragment.at, key)?;
        Ok((header, body))
    }

    /// Removes fragments past each stream's retention, then the segment
    /// files nothing points into any more. Returns the fragments removed.
    pub fn trim_expired(&self, now_ms: u64) -> Result<u64, VideoError> {
        let streams: Vec<Arc<Stream>> = self.streams_read().values().cloned().collect();
        let mut removed = 0;
        for stream in streams {
            let retention_ms = match stream.meta().retention_hours {
                0 => self.config.live_window_ms,
                hours => u64::from(hours) * 3_600_000,
            };
            let cutoff = now_ms.saturating_sub(retention_ms);
            let writer = lock(&stream.writer);
            if stream.is_deleted() {
                continue;
            }
            let mut expired_until = None;
            let mut keep_segment = writer.segments.current_segment();
            for meta in self.fragments_from(&stream, 0)? {
                let meta = meta?;
                if meta.server_ms >= cutoff {
                    keep_segment =
                        Some(keep_segment.map_or(meta.at.segment, |s| s.min(meta.at.segment)));
                    break;
                }
                expired_until = Some(meta.seq + 1);
                removed += 1;
            }
            let cf = self.cf(FRAGMENTS)?;
            if let Some(until) = expired_until {
                self.db.delete_range_cf(
                    cf,
                    fragment_key(stream.id, 0),
                    fragment_key(stream.id, until),
                )?;
            }
            if let Some(keep) = keep_segment {
                segments::remove_below(&self.config.root, stream.id, keep)?;
            }
        }
        Ok(removed)
    }
}

/// A fragment read back whole: the header it was sent under, its Cluster
/// body and the metadata its producer sent with it.
pub struct TaggedFragment {
    pub header: Arc<Header>,
    pub body: Vec<u8>,
    pub tags: Vec<ProducerTag>,
}

/// One PutMedia connection's right to write: a newer connection to the
/// same stream takes it away.
pub struct PutSession {
    stream: Arc<Stream>,
    generation: u64,
}

impl PutSession {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    pub fn is_current(&self) -> bool {
        self.stream.put_generation.load(Ordering::SeqCst) == self.generation
    }
}

fn tags_len(fragment: &FragmentMeta, stored: &[u8]) -> Result<usize, VideoError> {
    let len = fragment.tags_len as usize;
    if len > stored.len() {
        return Err(VideoError::Corrupt(format!(
            "fragment {}: {len} bytes of metadata in a record of {}",
            fragment.seq,
            stored.len()
        )));
    }
    Ok(len)
}

/// The metadata `persist` stored as a Tags element.
fn stored_tags(bytes: &[u8]) -> Result<Vec<ProducerTag>, VideoError> {
    use crate::mkv::ebml;
    match ebml::children(bytes).next() {
        Some(Some((ebml::TAGS, payload))) => crate::mkv::producer_tags(payload, 0)
            .map_err(|e| VideoError::Corrupt(format!("stored fragment metadata: {e}"))),
        _ => Err(VideoError::Corrupt(
            "stored fragment metadata is not a Tags element".into(),
        )),
    }
}

fn check_version(meta: &StreamMeta, version: Option<&str>) -> Result<(), VideoError> {
    match version {
        Some(v) if v != meta.version => Err(VideoError::VersionMismatch(format!(
            "The version {v} is not the stream's current version"
        ))),
        _ => Ok(()),
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, VideoError> {
    serde_json::from_slice(bytes).map_err(|e| VideoError::Corrupt(e.to_string()))
}

fn read_u64(bytes: &[u8]) -> Result<u64, VideoError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| VideoError::Corrupt("a counter is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(timecode_ms: i64) -> Fragment {
        Fragment {
            timecode_ms,
            body: vec![0xA3, 0x84, 0x81, 0, 0, 0x80],
            frames: Vec::new(),
            duration_ms: 2000,
            tags: Vec::new(),
            header: Arc::new(Header {
                timecode_scale: 1_000_000,
                info: Vec::new(),
                tracks_element: Vec::new(),
                tracks: Vec::new(),
            }),
        }
    }

    /// A stream `cam` kept an hour.
    fn create_cam(video: &Video) -> StreamMeta {
        video
            .create_stream(CreateStream {
                name: "cam".into(),
                device_name: None,
                media_type: None,
                kms_key_id: None,
                retention_hours: 1,
                tags: BTreeMap::new(),
            })
            .expect("create")
    }

    fn open(dir: &std::path::Path) -> (runnel_store::Store, Video) {
        let store = runnel_store::Store::open(&dir.join("data"), COLUMN_FAMILIES).expect("store");
        let video =
            Video::open(store.db().clone(), VideoConfig::new(dir.join("video"))).expect("video");
        (store, video)
    }

    fn put(video: &Video, stream: &Arc<Stream>, server_ms: u64) -> u64 {
        let session = video.begin_put(stream);
        let seq = video.reserve_seq(&session);
        video
            .persist(
                &session,
                seq,
                &fragment(server_ms as i64),
                server_ms,
                server_ms,
            )
            .expect("persist");
        seq
    }

    #[test]
    fn metadata_is_kept_with_its_fragment_and_sealed_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            runnel_store::Store::open(&dir.path().join("data"), COLUMN_FAMILIES).expect("store");
        let config = VideoConfig {
            encryption_key: Some([9u8; runnel_store::crypto::KEY_LEN]),
            ..VideoConfig::new(dir.path().join("video"))
        };
        let video = Video::open(store.db().clone(), config).expect("video");
        let meta = create_cam(&video);
        let stream = video
            .stream(&StreamRef::Name("cam".into()))
            .expect("stream");
        let session = video.begin_put(&stream);
        let tags = vec![
            ProducerTag {
                name: "licence-plate".into(),
                value: "SECRET-PLATE-123".into(),
            },
            ProducerTag {
                name: "motion".into(),
                value: "true".into(),
            },
        ];
        let mut tagged = fragment(1000);
        tagged.tags = tags.clone();
        let now = now_ms();
        for (i, f) in [tagged, fragment(3000)].iter().enumerate() {
            let seq = video.reserve_seq(&session);
            video
                .persist(&session, seq, f, now + i as u64, now)
                .expect("persist");
        }
        let stored = video.fragments(&stream, 0, 10).expect("fragments");
        assert!(stored[0].tags_len > 0 && stored[1].tags_len == 0);
        let read = video.read_tagged(&stream, &stored[0]).expect("read");
        assert_eq!((read.body, read.tags), (fragment(0).body, tags));
        let (_, body) = video.read(&stream, &stored[0]).expect("read");
        assert_eq!(body, fragment(0).body, "read gives the Cluster body alone");
        let untagged = video.read_tagged(&stream, &stored[1]).expect("read");
        assert!(untagged.tags.is_empty());
        let dir = segments::stream_dir(&dir.path().join("video"), meta.id);
        for segment in segments::list_segments(&dir).expect("segments") {
            let bytes = std::fs::read(dir.join(format!("{segment:016x}.seg"))).expect("segment");
            assert!(
                !bytes.windows(12).any(|w| w == b"SECRET-PLATE"),
                "metadata in the clear on disk"
            );
        }
    }

    #[test]
    fn retention_removes_old_fragments_and_their_segments_but_never_reuses_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = now_ms();
        let hour = 3_600_000;
        let stream_dir;
        {
            let (_store, video) = open(dir.path());
            let meta = create_cam(&video);
            stream_dir = segments::stream_dir(&dir.path().join("video"), meta.id);
            let stream = video
                .stream(&StreamRef::Name("cam".into()))
                .expect("stream");
            for i in 0..3 {
                put(&video, &stream, now - 2 * hour + i);
            }
        }
        // A restart writes to a new segment, so the old one can go whole.
        let (_store, video) = open(dir.path());
        let stream = video
            .stream(&StreamRef::Name("cam".into()))
            .expect("stream");
        assert_eq!(
            put(&video, &stream, now),
            3,
            "numbers go on after a restart"
        );
        assert_eq!(
            segments::list_segments(&stream_dir).expect("list"),
            vec![0, 1]
        );
        assert_eq!(video.trim_expired(now).expect("trim"), 3);
        let left = video.fragments(&stream, 0, 10).expect("fragments");
        assert_eq!(left.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![3]);
        assert_eq!(segments::list_segments(&stream_dir).expect("list"), vec![1]);
        let (_, body) = video.read(&stream, &left[0]).expect("read");
        assert_eq!(body, fragment(0).body);

        // Retention 0 keeps only the live window.
        video
            .update(
                &StreamRef::Name("cam".into()),
                None,
                |m| {
                    m.retention_hours = 0;
                    Ok(())
                },
                true,
            )
            .expect("update");
        let later = now + video.config().live_window_ms + 1;
        assert_eq!(video.trim_expired(later).expect("trim"), 1);
        assert!(
            video
                .fragments(&stream, 0, 10)
                .expect("fragments")
                .is_empty()
        );
        assert_eq!(
            put(&video, &stream, later),
            4,
            "a trimmed stream's numbers are not reused"
        );
    }
}
