//! A real S3 engine for the tests: one SeaweedFS (`weed mini`) per test process, started on
//! 127.0.0.1 by `scripts/seaweedfs.sh` (which builds it once into a cache) and stopped when the
//! process ends; a fresh bucket per test; and a small client to look inside it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

pub const ACCESS_KEY: &str = "knsock-test";
pub const SECRET_KEY: &str = "knsock-test-secret";

/// The engine of this test process.
pub struct Weed {
    pub endpoint: String,
    _data: tempfile::TempDir,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The engine at `KNSOCK_S3_ENDPOINT`, or one started on first use that stops when this
/// process exits (the script watches it).
pub fn weed() -> &'static Weed {
    static WEED: OnceLock<Weed> = OnceLock::new();
    WEED.get_or_init(|| {
        let data = tempfile::tempdir().unwrap();
        // An engine the caller runs already (scripts/test.sh starts one for every suite).
        if let Ok(endpoint) = std::env::var("KNSOCK_S3_ENDPOINT") {
            return Weed {
                endpoint,
                _data: data,
            };
        }
        let out = Command::new(repo().join("scripts/seaweedfs.sh"))
            .arg("start")
            .arg(data.path())
            .env("KNSOCK_WEED_WATCH_PID", std::process::id().to_string())
            .output()
            .expect("running scripts/seaweedfs.sh");
        assert!(
            out.status.success(),
            "scripts/seaweedfs.sh start failed (run scripts/install-deps.sh once):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoint = std::fs::read_to_string(data.path().join("endpoint")).unwrap();
        Weed {
            endpoint: endpoint.trim().to_string(),
            _data: data,
        }
    })
}

/// A bucket of its own for one test, in the shared engine.
pub struct TestBucket {
    pub name: String,
    bucket: Bucket,
    creds: Credentials,
    agent: ureq::Agent,
}

impl TestBucket {
    pub fn new(test: &str) -> TestBucket {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("{test}-{}-{n}", std::process::id()).replace('_', "-");
        let url = weed().endpoint.parse().unwrap();
        let bucket = Bucket::new(url, UrlStyle::Path, name.clone(), "us-east-1").unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let b = TestBucket {
            name,
            bucket,
            creds: Credentials::new(ACCESS_KEY, SECRET_KEY),
            agent,
        };
        let url = b
            .bucket
            .create_bucket(&b.creds)
            .sign(Duration::from_secs(60));
        let status = b.agent.put(url.as_str()).send_empty().unwrap().status();
        assert_eq!(status, 200, "creating bucket {}", b.name);
        b
    }

    /// The configuration a receiver uses to store into this bucket under `prefix`.
    pub fn config(&self, prefix: &str) -> knsock::S3Config {
        knsock::S3Config {
            endpoint: Some(weed().endpoint.clone()),
            region: Some("us-east-1".into()),
            bucket: self.name.clone(),
            prefix: prefix.into(),
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
            path_style: true,
            ..knsock::S3Config::default()
        }
    }

    pub fn store(&self, prefix: &str) -> Arc<knsock::S3Store> {
        Arc::new(knsock::S3Store::open(&self.config(prefix)).unwrap())
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.creds));
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(Duration::from_secs(60));
            let body = self.get_text(url.as_str());
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&body).unwrap();
            keys.extend(parsed.contents.into_iter().map(|c| c.key));
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        keys.sort();
        keys
    }

    /// The object's content, or `None` when there is no such object.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let url = self
            .bucket
            .get_object(Some(&self.creds), key)
            .sign(Duration::from_secs(60));
        let mut response = self.agent.get(url.as_str()).call().unwrap();
        match response.status().as_u16() {
            404 => None,
            200 => Some(
                response
                    .body_mut()
                    .with_config()
                    .limit(u64::MAX)
                    .read_to_vec()
                    .unwrap(),
            ),
            s => panic!("GET {key}: HTTP {s}"),
        }
    }

    /// Keys of the unfinished multipart uploads in the bucket.
    pub fn uploads(&self) -> Vec<String> {
        let found = self.store("").unfinished_uploads().unwrap();
        found.into_iter().map(|(key, _)| key).collect()
    }

    fn get_text(&self, url: &str) -> String {
        let mut response = self.agent.get(url).call().unwrap();
        assert_eq!(response.status(), 200);
        response.body_mut().read_to_string().unwrap()
    }

    /// Removes every object and the bucket itself.
    pub fn delete_all(&self) {
        for key in self.keys() {
            let url = self
                .bucket
                .delete_object(Some(&self.creds), &key)
                .sign(Duration::from_secs(60));
            self.agent.delete(url.as_str()).call().unwrap();
        }
        let url = self
            .bucket
            .delete_bucket(&self.creds)
            .sign(Duration::from_secs(60));
        self.agent.delete(url.as_str()).call().unwrap();
    }
}

/// The environment a `kn-sock run-file-server ... s3://` child needs.
pub fn cli_env(cmd: &mut Command, spool: &Path) {
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_ENDPOINT_URL", &weed().endpoint)
        .arg("--s3-path-style")
        .arg("--spool-dir")
        .arg(spool);
}
