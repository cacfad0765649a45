//! Where objects go: a bucket named by `BucketARN` is a directory under
//! the server's bucket root (the embedded default, needing no other
//! server) or, when an S3 endpoint is configured, that endpoint's bucket
//! of the same name. Both are written through `object_store`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

/// An S3-compatible endpoint buckets are written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    pub url: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

pub struct Buckets {
    root: PathBuf,
    endpoint: Option<S3Endpoint>,
    open: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Buckets {
    pub fn new(root: PathBuf, endpoint: Option<S3Endpoint>) -> Buckets {
        Buckets {
            root,
            endpoint,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = open.get(name) {
            return Ok(store.clone());
        }
        let store: Arc<dyn ObjectStore> = match &self.endpoint {
            None => {
                let dir = self.root.join(name);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    format!("cannot create bucket directory {}: {e}", dir.display())
                })?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(&dir)
                        .map_err(|e| format!("cannot open bucket {name}: {e}"))?,
                )
            }
            Some(endpoint) => Arc::new(remote_bucket(endpoint, name)?),
        };
        open.insert(name.to_string(), store.clone());
        Ok(store)
    }

    /// Writes the object whole: readers see all of it or none of it.
    /// Writing the same key again replaces it.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        let store = self.bucket(bucket)?;
        store
            .put(&Path::from(key), PutPayload::from(body))
            .await
            .map(|_| ())
            .map_err(|e| format!("writing s3://{bucket}/{key}: {e}"))
    }
}

fn remote_bucket(
    endpoint: &S3Endpoint,
    bucket: &str,
) -> Result<object_store::aws::AmazonS3, String> {
    // Few quick retries inside a put: the delivery loop does its own
    // backoff, counting each failure, for as long as an outage lasts.
    let retry = RetryConfig {
        max_retries: 1,
        retry_timeout: Duration::from_secs(10),
        ..RetryConfig::default()
    };
    let options = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120))
        // A plain http:// endpoint works as it does for the aws CLI.
        .with_allow_http(endpoint.url.starts_with("http://"));
    let mut builder = AmazonS3Builder::new()
        .with_endpoint(&endpoint.url)
        .with_region(&endpoint.region)
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        .with_retry(retry)
        .with_client_options(options);
    match (&endpoint.access_key_id, &endpoint.secret_access_key) {
        (Some(key), Some(secret)) => {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        _ => builder = builder.with_skip_signature(true),
    }
    builder
        .build()
        .map_err(|e| format!("cannot reach bucket {bucket} at {}: {e}", endpoint.url))
}
